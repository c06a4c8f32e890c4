/**
 * `npm run bench:sqlite-small`: scenario 9 of `npm run bench` (SQLite `SELECT 1`, submit → done with the
 * `?wait=` long-poll, one query at a time; issue 15, item 3: target p50 ≤ 20 ms) on its own, and against
 * other builds. The reference, measured in the same run, is what the database work itself costs:
 * better-sqlite3 opening the same file, `SELECT 1`, closing, in this process.
 *
 * Run: npx tsx bench/sqlite-select-one.ts [--queries N] [--reps N] [--bin <qrun.js>]...
 * Each --bin is another build's dist/src/cli/qrun.js (default this checkout's); several run interleaved,
 * so a busy machine slows them alike.
 */
import { parseArgs } from 'node:util';
import { median } from './lib/stats.js';
import { betterSqlite3, p50s, qrunSqlite, type SqliteContender } from './scenarios/small-sqlite.js';

const { values } = parseArgs({
  options: {
    queries: { type: 'string', default: '100' },
    reps: { type: 'string', default: '3' },
    bin: { type: 'string', multiple: true },
  },
});
const queries = Number(values.queries);
const reps = Number(values.reps);
const bins = values.bin ?? [undefined];

const contenders: SqliteContender[] = [];
try {
  let file: string | undefined;
  for (const bin of bins) {
    const qrun = await qrunSqlite(bin);
    contenders.push(qrun);
    file ??= qrun.file;
  }
  const reference = betterSqlite3(file!);
  contenders.push(reference);
  const p50 = await p50s(contenders, queries, reps);
  const ref = median(p50.get(reference.name)!);
  console.log(
    `\n| SQLite SELECT 1, submit → done, p50 of ${queries} (median of ${reps}) | ms | ÷ reference |`,
  );
  console.log('| --- | --: | --: |');
  for (const c of contenders) {
    const value = median(p50.get(c.name)!);
    console.log(`| ${c.name} | ${value.toFixed(2)} | ${(value / ref).toFixed(1)}× |`);
  }
} finally {
  for (const c of contenders) await c.stop?.();
}
