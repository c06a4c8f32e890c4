/**
 * Before/after figures for a product change: the same scenarios against two qrun builds, run
 * interleaved (A, B, B, A, …) so that a busy machine slows both alike. docs/PERFORMANCE.md's
 * "what was changed" figures come from this script.
 *
 * Run: npx tsx bench/compare.ts <before qrun.js> [<after qrun.js>] [--rows N] [--reps N] [--duration S]
 *        [--small N] [--only ingest-pg,ingest-mysql,readback,serve,small] [--database NAME]
 * `after` defaults to this checkout's dist/src/cli/qrun.js. The baseline is a build of the old sources (tsc -p tsconfig.build.json in a copy of the tree whose
 * node_modules points at this one). Tables are filled as by `npm run bench -- --keep-db` and kept.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { TABLE_QUERY, prepareMariadb, preparePostgres, type Engine } from './lib/databases.js';
import { Qrun } from './lib/qrun.js';
import { median } from './lib/stats.js';
import { ROOT, log, timed } from './lib/util.js';
import { walkPages } from './scenarios/readback.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rows: { type: 'string', default: '200000' },
    reps: { type: 'string', default: '5' },
    duration: { type: 'string', default: '5' },
    small: { type: 'string', default: '100' },
    only: { type: 'string', default: 'ingest-pg,ingest-mysql,readback,serve,small' },
    database: { type: 'string', default: 'qrun_bench' },
  },
});
const [baselineBin, afterBin] = positionals;
if (baselineBin === undefined)
  throw new Error('usage: compare.ts <before qrun.js> [<after qrun.js>] [options]');
const rows = Number(values.rows);
const reps = Number(values.reps);
const only = new Set(values.only.split(','));
const database = values.database;

await preparePostgres(database, rows);
await prepareMariadb(database, rows);

interface Build {
  name: string;
  qrun: Qrun;
  conns: Record<Engine, string>;
  pgResult?: string;
  pageUrls?: string[];
}

const builds: Build[] = [];
try {
  for (const [name, bin] of [
    ['before', path.resolve(baselineBin)],
    ['after', afterBin === undefined ? path.join(ROOT, 'dist/src/cli/qrun.js') : path.resolve(afterBin)],
  ] as const) {
    const qrun = await Qrun.start({ bin });
    builds.push({
      name,
      qrun,
      conns: {
        postgresql: await qrun.createConnection('postgresql', database),
        mysql: await qrun.createConnection('mysql', database),
      },
    });
  }

  const samples = new Map<string, Map<string, number[]>>();
  const record = (metric: string, build: string, value: number) => {
    const byBuild = samples.get(metric) ?? new Map<string, number[]>();
    byBuild.set(build, [...(byBuild.get(build) ?? []), value]);
    samples.set(metric, byBuild);
  };

  const once = async (b: Build) => {
    for (const engine of ['postgresql', 'mysql'] as const) {
      if (!only.has(engine === 'postgresql' ? 'ingest-pg' : 'ingest-mysql')) continue;
      const { seconds, value } = await timed(() => b.qrun.run(b.conns[engine], TABLE_QUERY));
      if (value.count !== rows) throw new Error(`${b.name}: ${value.count} rows`);
      if (engine === 'postgresql') b.pgResult = value.id;
      record(`ingest ${engine} (s)`, b.name, seconds);
    }
    if (only.has('readback') || only.has('serve')) {
      b.pgResult ??= (await b.qrun.run(b.conns.postgresql, TABLE_QUERY)).id;
      const walk = await timed(() => walkPages(b.qrun, b.pgResult!, true));
      b.pageUrls ??= walk.value.pages.map((p) => p.url);
      if (only.has('readback')) record('read-back, all pages (s)', b.name, walk.seconds);
    }
    if (only.has('serve')) {
      const urls = b.pageUrls!;
      const result = await autocannon({
        url: b.qrun.base,
        connections: 50,
        duration: Number(values.duration),
        headers: { authorization: b.qrun.authorization },
        requests: [
          { setupRequest: (req) => ({ ...req, path: urls[Math.floor(Math.random() * urls.length)] }) },
        ],
      });
      if (result.non2xx + result.errors > 0) throw new Error(`${b.name}: errors under load`);
      record('page serving (req/s)', b.name, result.requests.total / result.duration);
      record('page serving p99 (ms)', b.name, result.latency.p99);
    }
    if (only.has('small')) {
      const ms: number[] = [];
      for (let i = 0; i < Number(values.small); i++) {
        ms.push((await timed(() => b.qrun.run(b.conns.postgresql, 'SELECT 1'))).seconds * 1000);
      }
      record('SELECT 1 p50 (ms)', b.name, median(ms));
    }
  };

  for (let rep = 0; rep < reps; rep++) {
    for (const b of rep % 2 === 0 ? builds : [...builds].reverse()) await once(b);
    log(`compare rep ${rep + 1}/${reps} done`);
  }

  console.log(
    `| measure (${rows.toLocaleString('en-US')} rows, median of ${reps}) | before | after | change |`,
  );
  console.log('| --- | --: | --: | --: |');
  for (const [metric, byBuild] of samples) {
    const before = median(byBuild.get('before')!);
    const after = median(byBuild.get('after')!);
    const change = ((after / before - 1) * 100).toFixed(0);
    console.log(`| ${metric} | ${before.toFixed(3)} | ${after.toFixed(3)} | ${change}% |`);
  }
} finally {
  for (const b of builds) await b.qrun.stop();
}
