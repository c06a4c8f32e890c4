/**
 * Whole-result exports (issue 13): memory and time of GET /api/queries/{id}/export for a large result,
 * beside psql's \copy of the same query.
 * Run: npm run build && npx tsx bench/export.ts [rows] [formats]   (npm run bench:export)
 * Defaults: 5,000,000 rows; csv,parquet.
 *
 * Starts the compiled CLI (`qrun start`, the embedded default) on a temporary data directory, runs a
 * PostgreSQL generate_series query with typed columns (int8, text, numeric(20,6), float8, bool,
 * timestamptz) to `done`, lets the process settle and reads its idle RSS, then downloads each export
 * (into a file under /tmp) while sampling /proc/<pid>/status every 50 ms. Where the kernel allows it,
 * VmHWM is reset before each export (writing 5 to /proc/<pid>/clear_refs), so the peak covers the export
 * only. The reference is `psql -h 127.0.0.1 -U postgres -d test -c "\copy (<query>) TO '/tmp/x.csv' CSV
 * HEADER"`. Needs Linux (/proc), psql, and PostgreSQL on 127.0.0.1:5432 (trust, user postgres, database test).
 */
import { spawn } from 'node:child_process';
import { createWriteStream, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Qrun } from './lib/qrun.js';
import { MB, memoryOf, sleep } from './lib/util.js';

const rows = Number(process.argv[2] ?? 5_000_000);
const formats = (process.argv[3] ?? 'csv,parquet').split(',');
if (!Number.isSafeInteger(rows) || rows < 1)
  throw new Error(`rows must be a positive integer, not ${process.argv[2]}`);

const QUERY =
  `SELECT n::int8 AS id, md5(n::text) AS hash, (n * 1.000001)::numeric(20,6) AS amount, ` +
  `n / 7.0::float8 AS price, n % 3 = 0 AS flag, ` +
  `timestamptz '2024-01-01 00:00:00+00' + n * interval '1 second' AS at ` +
  `FROM generate_series(1, ${rows}) AS n`;

const mb = (bytes: number) => (bytes / MB).toFixed(1);

function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

async function psqlCopy(file: string): Promise<number> {
  const started = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      'psql',
      [
        '-h',
        '127.0.0.1',
        '-U',
        'postgres',
        '-d',
        'test',
        '-v',
        'ON_ERROR_STOP=1',
        '-c',
        `\\copy (${QUERY}) TO '${file}' CSV HEADER`,
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`psql exited ${code}`))));
  });
  return Number(process.hrtime.bigint() - started) / 1e9;
}

const qrun = await Qrun.start();
try {
  const connection = await qrun.createConnection('postgresql', 'test');
  console.log(
    `query:             ${rows.toLocaleString('en-US')} rows (id int8, hash text, amount numeric(20,6), price float8, flag bool, at timestamptz)`,
  );
  const ingestStart = process.hrtime.bigint();
  const { id, count } = await qrun.run(connection, QUERY);
  console.log(
    `qrun ran it:       ${(Number(process.hrtime.bigint() - ingestStart) / 1e9).toFixed(1)} s, ${count.toLocaleString('en-US')} rows stored`,
  );
  await sleep(3000);
  const idle = memoryOf(qrun.pid).rss;
  console.log(`idle RSS:          ${mb(idle)} MB (after the query, before any export)`);

  const results: { format: string; seconds: number; bytes: number; peak: number; hwm: number | null }[] = [];
  for (const format of formats) {
    const file = `/tmp/qrun-export-bench.${format}`;
    const canReset = resetPeak(qrun.pid);
    let peak = memoryOf(qrun.pid).rss;
    const sampler = setInterval(() => {
      peak = Math.max(peak, memoryOf(qrun.pid).rss);
    }, 50);
    const started = process.hrtime.bigint();
    try {
      const res = await fetch(`${qrun.base}/api/queries/${id}/export?format=${format}`, {
        headers: { authorization: qrun.authorization, 'accept-encoding': 'identity' },
      });
      if (!res.ok || !res.body) throw new Error(`export ${format}: ${res.status} ${await res.text()}`);
      await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), createWriteStream(file));
    } finally {
      clearInterval(sampler);
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const memory = memoryOf(qrun.pid);
    peak = Math.max(peak, memory.rss);
    const bytes = statSync(file).size;
    unlinkSync(file);
    results.push({ format, seconds, bytes, peak, hwm: canReset ? memory.hwm : null });
    console.log(
      `export ${format.padEnd(8)}    ${seconds.toFixed(1)} s, ${mb(bytes)} MB, peak RSS ${mb(peak)} MB sampled` +
        (canReset ? `, VmHWM ${mb(memory.hwm)} MB` : '') +
        ` → peak − idle ${mb(Math.max(peak, canReset ? memory.hwm : 0) - idle)} MB`,
    );
    await sleep(1000);
  }

  const copyFile = '/tmp/x.csv';
  const copySeconds = await psqlCopy(copyFile);
  const copyBytes = statSync(copyFile).size;
  unlinkSync(copyFile);
  console.log(`psql \\copy CSV:    ${copySeconds.toFixed(1)} s, ${mb(copyBytes)} MB`);
  for (const r of results) {
    console.log(
      `ratio ${r.format.padEnd(8)}    ${(r.seconds / copySeconds).toFixed(2)} × psql \\copy's time`,
    );
  }
  const worst = Math.max(...results.map((r) => Math.max(r.peak, r.hwm ?? 0) - idle));
  console.log(
    `target:            peak within 150 MB of idle: ${worst <= 150 * MB ? 'met' : 'NOT met'} (worst ${mb(worst)} MB)`,
  );
} finally {
  await qrun.stop();
}
