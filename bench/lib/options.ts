import { parseArgs } from 'node:util';

export const SCENARIOS = [
  'ingest-pg',
  'ingest-mysql',
  'readback',
  'serve',
  'small',
  'many',
  'small-sqlite',
  'idle',
  'memory',
  'scale-out',
] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface Options {
  json: boolean;
  /** Also write the JSON report to this file. */
  out: string | undefined;
  smoke: boolean;
  /** Rows of the pre-filled tables (scenarios 1-4). */
  rows: number;
  /** Rows of the memory query (scenario 6). */
  memoryRows: number;
  reps: number;
  memoryReps: number;
  /** autocannon run length per contender and repetition, seconds. */
  duration: number;
  connections: number;
  /** `SELECT 1` round trips per repetition. */
  smallQueries: number;
  only: Set<Scenario>;
  database: string;
  keepDatabases: boolean;
  build: boolean;
  /** Write V8 CPU profiles of every qrun process here (node --cpu-prof). */
  cpuProfDir: string | undefined;
  /** Exit 1 when a target is missed (never in smoke mode). */
  strict: boolean;
  /** Scenario 4: autocannon on the last CPU, the servers on the others (taskset). */
  pin: boolean;
}

const HELP = `usage: npm run bench -- [options]

  --json               print the results as JSON on stdout (progress stays on stderr; use npm run -s)
  --out FILE           also write the JSON report to FILE
  --smoke              tiny sizes, one repetition, no thresholds (what CI runs)
  --rows N             rows of the pre-filled tables (default 1000000)
  --memory-rows N      rows of the memory query (default 5000000)
  --reps N             repetitions of scenarios 1-5 and 8-10 (default 5)
  --memory-reps N      repetitions of scenario 6 (default 3)
  --duration S         autocannon seconds per run (default 10)
  --connections N      autocannon connections (default 50)
  --small N            SELECT 1 round trips per repetition, scenarios 5 and 9 (default 200)
  --only LIST          comma-separated subset of: ${SCENARIOS.join(', ')}
  --database NAME      benchmark database on PostgreSQL and MariaDB (default qrun_bench)
  --keep-db            keep the benchmark databases (a later run with the same --rows reuses them)
  --no-build           do not run \`npm run build\` when dist/ is older than src/
  --cpu-prof DIR       run every qrun process under node --cpu-prof, profiles written to DIR
  --strict             exit 1 when a target is missed
  --pin                page serving: autocannon on the last CPU, the servers on the others (taskset)
`;

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`--${name} must be a positive integer, not ${value}`);
  return n;
}

export function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      smoke: { type: 'boolean', default: false },
      rows: { type: 'string' },
      'memory-rows': { type: 'string' },
      reps: { type: 'string' },
      'memory-reps': { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      small: { type: 'string' },
      only: { type: 'string' },
      database: { type: 'string' },
      'keep-db': { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      strict: { type: 'boolean', default: false },
      pin: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const smoke = values.smoke;
  const only = new Set<Scenario>();
  for (const name of (values.only ?? SCENARIOS.join(',')).split(',')) {
    if (!(SCENARIOS as readonly string[]).includes(name.trim())) {
      throw new Error(`--only: unknown scenario ${name}; known: ${SCENARIOS.join(', ')}`);
    }
    only.add(name.trim() as Scenario);
  }
  const database = values.database ?? (smoke ? 'qrun_bench_smoke' : 'qrun_bench');
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(database)) throw new Error(`--database: not a plain name: ${database}`);
  return {
    json: values.json,
    out: values.out,
    smoke,
    rows: positive('rows', values.rows, smoke ? 3_000 : 1_000_000),
    memoryRows: positive('memory-rows', values['memory-rows'], smoke ? 20_000 : 5_000_000),
    reps: positive('reps', values.reps, smoke ? 1 : 5),
    memoryReps: positive('memory-reps', values['memory-reps'], smoke ? 1 : 3),
    duration: positive('duration', values.duration, smoke ? 1 : 10),
    connections: positive('connections', values.connections, smoke ? 10 : 50),
    smallQueries: positive('small', values.small, smoke ? 10 : 200),
    only,
    database,
    keepDatabases: values['keep-db'],
    build: !values['no-build'],
    cpuProfDir: values['cpu-prof'],
    strict: values.strict && !smoke,
    pin: values.pin,
  };
}
