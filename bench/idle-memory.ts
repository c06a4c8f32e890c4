/**
 * Idle memory of `qrun start` (issue 15, item 5: at most 100 MB RSS), scenario 10 of `npm run bench` on
 * its own and against other builds: the VmRSS of a freshly started embedded qrun (SQLite metadata, result
 * files) that has answered /readyz and then sat idle, against a bare Node HTTP server measured the same way
 * in the same run.
 * Run: npm run build --silent && npm run bench:idle [-- --runs 3 --settle 5 --bin <dist/src/cli/qrun.js>]
 *
 * Each run starts a new process on a temporary QRUN_DATA_DIR and QRUN_FILE_ROOT and a free port, waits
 * for /readyz, waits `--settle` seconds more, reads VmRSS from /proc/<pid>/status and stops it. The
 * figures are medians of `--runs` runs. Needs Linux (/proc). Exits 1 when the median is above 100 MB.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './lib/stats.js';
import { MB, ROOT } from './lib/util.js';
import { idleReadings, mb } from './scenarios/idle.js';

const TARGET_BYTES = 100 * MB;

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    settle: { type: 'string', default: '5' },
    bin: { type: 'string', default: path.join(ROOT, 'dist/src/cli/qrun.js') },
  },
});
const runs = Number(values.runs);
const settleMs = Number(values.settle) * 1000;
if (!Number.isSafeInteger(runs) || runs < 1)
  throw new Error(`--runs must be a positive integer, not ${values.runs}`);
if (!(settleMs >= 0)) throw new Error(`--settle must be a number of seconds, not ${values.settle}`);

const { qrun, baseline } = await idleReadings(values.bin, runs, settleMs);
const q = median(qrun);
const b = median(baseline);
console.log(`qrun start, idle RSS:   ${mb(q)} (median of ${runs}; runs ${qrun.map(mb).join(', ')})`);
console.log(`bare node http server: ${mb(b)} (median of ${runs}; runs ${baseline.map(mb).join(', ')})`);
console.log(`ratio qrun ÷ bare:      ${(q / b).toFixed(2)}×`);
console.log(`qrun − bare:            ${mb(q - b)}`);
console.log(`target ≤ 100 MB:        ${q <= TARGET_BYTES ? 'met' : 'not met'}`);
if (q > TARGET_BYTES) process.exitCode = 1;
