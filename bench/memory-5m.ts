/**
 * Memory of a real qrun process while it runs one 5,000,000-row query end to end (database → pages on
 * disk → done), to show that memory stays flat however large the result is. `npm run bench` runs the
 * same measurement as its scenario 6; this is the quick stand-alone form.
 * Run: npm run build && npx tsx bench/memory-5m.ts [postgresql|mysql] [rows]
 *
 * Starts the compiled CLI (dist/src/cli/qrun.js start) on a temporary data directory, measures its
 * idle RSS once a connection exists (driver loaded), then samples /proc/<pid>/status every 100 ms
 * while the query runs. VmHWM is the kernel's own high-water mark, so a spike between two samples
 * still counts. Needs Linux (/proc), PostgreSQL on 127.0.0.1:5432 (trust, user postgres, database
 * test) or MariaDB on 127.0.0.1:3306 (root, no password, database test).
 */
import { MB } from './lib/util.js';
import { measureMemory } from './scenarios/memory.js';

const engine = process.argv[2] ?? 'postgresql';
const rows = Number(process.argv[3] ?? 5_000_000);
if (engine !== 'postgresql' && engine !== 'mysql')
  throw new Error('usage: memory-5m.ts [postgresql|mysql] [rows]');
if (!Number.isSafeInteger(rows) || rows < 1)
  throw new Error(`rows must be a positive integer, not ${process.argv[3]}`);

const mb = (bytes: number) => (bytes / MB).toFixed(1);
const run = await measureMemory(engine, rows, 'test');
console.log(`engine:            ${engine}`);
console.log(`rows:              ${rows.toLocaleString('en-US')} (id, hash, amount, at)`);
console.log(`pages on disk:     ${mb(run.pageBytes)} MB`);
console.log(`idle RSS:          ${mb(run.idleRss)} MB`);
console.log(`peak RSS (VmHWM):  ${mb(run.peakRss)} MB (highest 100 ms sample ${mb(run.maxSampledRss)} MB)`);
console.log(`peak − idle:       ${mb(run.peakRss - run.idleRss)} MB`);
console.log(`RSS at the end:    ${mb(run.endRss)} MB`);
console.log(`elapsed:           ${run.seconds.toFixed(1)} s`);
console.log(`throughput:        ${Math.round(rows / run.seconds).toLocaleString('en-US')} rows/s`);
