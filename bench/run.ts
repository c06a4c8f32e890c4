/**
 * `npm run bench`: every scenario of docs/PERFORMANCE.md, several repetitions, medians and ratios
 * (qrun ÷ reference) as a Markdown table, or JSON with --json. `npm run bench:smoke` runs the same
 * code at tiny sizes once, with no thresholds, so the scripts cannot rot. `--help` lists the options.
 *
 * Creates and fills its own databases (dropped at the end unless --keep-db), builds dist/ when it is
 * older than src/, and starts and stops every process it needs: qrun (the compiled CLI on a temporary
 * data directory), postgres-meta, the plain Fastify reference server, and for scenario 7 a scale-out
 * deployment (api and workers, a metadata database, a Redis key prefix and s3rver of its own).
 */
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import path from 'node:path';
import { dropDatabases, prepareMariadb, preparePostgres, warmTables, type Engine } from './lib/databases.js';
import { parseOptions, type Scenario } from './lib/options.js';
import { Qrun } from './lib/qrun.js';
import { markdownTable, type ResultRow } from './lib/report.js';
import { ROOT, log, runCommand, secondsSince } from './lib/util.js';
import type { BenchContext } from './scenarios/context.js';
import { idle } from './scenarios/idle.js';
import { ingest } from './scenarios/ingest.js';
import { many } from './scenarios/many.js';
import { memory } from './scenarios/memory.js';
import { readback } from './scenarios/readback.js';
import { scaleOut, scaleOutReps } from './scenarios/scale-out.js';
import { serve } from './scenarios/serve.js';
import { small } from './scenarios/small.js';
import { smallSqlite } from './scenarios/small-sqlite.js';

const options = parseOptions(process.argv.slice(2));
const wants = (s: Scenario) => options.only.has(s);

/** Newest modification time of any file under `dir`. */
function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    latest = Math.max(latest, statSync(path.join(dir, entry)).mtimeMs);
  }
  return latest;
}

function distIsStale(): boolean {
  try {
    return statSync(path.join(ROOT, 'dist/src/cli/qrun.js')).mtimeMs < newest(path.join(ROOT, 'src'));
  } catch {
    return true;
  }
}

// Engines whose databases the chosen scenarios touch; tables only where rows are read from them.
const engines: Engine[] = [];
if (
  ['ingest-pg', 'readback', 'serve', 'small', 'many', 'memory', 'scale-out'].some((s) => wants(s as Scenario))
)
  engines.push('postgresql');
if (wants('ingest-mysql') || wants('memory')) engines.push('mysql');
const pgTable = wants('ingest-pg') || wants('readback') || wants('serve') || wants('scale-out');
const mariaTable = wants('ingest-mysql');

const cleanups: (() => Promise<void>)[] = [];
async function cleanUp(): Promise<void> {
  await Qrun.stopAll().catch((err: unknown) => log(`stopping qrun failed: ${String(err)}`));
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup().catch((err: unknown) => log(`clean-up failed: ${String(err)}`));
  }
}
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping`);
    void cleanUp().finally(() => process.exit(code));
  });
}

const started = process.hrtime.bigint();
const rows: ResultRow[] = [];
try {
  if (options.build && distIsStale()) {
    log('dist/ is older than src/: npm run build');
    await runCommand('npm', ['run', 'build', '--silent'], { cwd: ROOT });
  }
  if (!options.keepDatabases) cleanups.push(() => dropDatabases(options.database, engines));
  // Creating the databases is needed even without tables: qrun's connections point at them.
  if (engines.includes('postgresql'))
    await preparePostgres(options.database, pgTable ? options.rows : undefined);
  if (engines.includes('mysql'))
    await prepareMariadb(options.database, mariaTable ? options.rows : undefined);
  await warmTables(options.database, [
    ...(pgTable ? ['postgresql' as const] : []),
    ...(mariaTable ? ['mysql' as const] : []),
  ]);

  const shared = ['ingest-pg', 'ingest-mysql', 'readback', 'serve', 'small'].some((s) =>
    wants(s as Scenario),
  );
  if (shared) {
    const qrun = await Qrun.start({ cpuProfDir: options.cpuProfDir });
    cleanups.push(() => qrun.stop());
    const ctx: BenchContext = { options, qrun, connections: {} };
    for (const engine of engines)
      ctx.connections[engine] = await qrun.createConnection(engine, options.database);

    if (wants('ingest-pg')) rows.push(...(await ingest(ctx, 'postgresql')));
    if (wants('ingest-mysql')) rows.push(...(await ingest(ctx, 'mysql')));
    if (wants('readback')) rows.push(...(await readback(ctx)));
    if (wants('serve')) rows.push(...(await serve(ctx)));
    if (wants('small')) rows.push(...(await small(ctx)));
    await cleanups.pop()!();
  }
  if (wants('many')) rows.push(...(await many(options)));
  if (wants('small-sqlite')) rows.push(...(await smallSqlite(options)));
  if (wants('idle')) rows.push(...(await idle(options)));
  if (wants('memory')) rows.push(...(await memory(options, ['postgresql', 'mysql'])));
  if (wants('scale-out')) rows.push(...(await scaleOut(options)));
} finally {
  await cleanUp();
}

// The smoke run proves that the scripts work; its tiny sizes say nothing about the targets.
if (options.smoke) for (const row of rows) delete row.met;
const elapsed = secondsSince(started);
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const missed = rows.filter((r) => r.met === false);
const { only, ...rest } = options;
const report = `${JSON.stringify(
  {
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    options: { ...rest, only: [...only] },
    machine: { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, memoryBytes: totalmem() },
    elapsedSeconds: elapsed,
    results: rows,
  },
  null,
  2,
)}\n`;
if (options.out !== undefined) writeFileSync(options.out, report);
if (options.json) {
  process.stdout.write(report);
} else {
  process.stdout.write(`${markdownTable(rows)}\n\n`);
  process.stdout.write(
    `${plural(options.reps, 'repetition')} (memory: ${options.memoryReps}, ` +
      `scale-out: ${scaleOutReps(options.reps)}), medians; ` +
      `${cpus().length} CPUs, Node ${process.version}; ` +
      `${elapsed.toFixed(0)} s in all.\n`,
  );
  if (!options.smoke) {
    process.stdout.write(
      !rows.some((r) => r.met !== undefined)
        ? 'No targets in these scenarios.\n'
        : missed.length === 0
          ? 'Every target met.\n'
          : `Missed: ${missed.map((r) => `${r.scenario} (${r.measure})`).join('; ')}\n`,
    );
  }
}
if (options.strict && missed.length > 0) process.exitCode = 1;
