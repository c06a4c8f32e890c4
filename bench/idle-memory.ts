/**
 * Idle memory of `qrun start` (issue 15, item 5: at most 100 MB RSS): the VmRSS of a freshly started
 * embedded qrun (SQLite metadata, result files) that has answered /readyz and then sat idle, against a
 * bare Node HTTP server measured the same way in the same run.
 * Run: npm run build --silent && npm run bench:idle [-- --runs 3 --settle 5 --bin <dist/src/cli/qrun.js>]
 *
 * Each run starts a new process on a temporary QRUN_DATA_DIR and QRUN_FILE_ROOT and a free port, waits
 * for /readyz, waits `--settle` seconds more, reads VmRSS from /proc/<pid>/status and stops it. The
 * figures are medians of `--runs` runs. Needs Linux (/proc). Exits 1 when the median is above 100 MB.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './lib/stats.js';
import { MB, ROOT, freePort, memoryOf, sleep, startChild, waitForHttp, type Child } from './lib/util.js';

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

/** The reference: a bare Node HTTP server with its own /readyz, nothing else loaded. */
const BASELINE = `
const http = require('node:http');
http.createServer((req, res) => res.end('ok')).listen(Number(process.env.PORT), '127.0.0.1');
`;

/** Starts a process, waits for /readyz and `settleMs`, reads its RSS, stops it. */
async function idleRss(start: (port: number) => Child): Promise<number> {
  const port = await freePort();
  const child = start(port);
  try {
    await waitForHttp(`http://127.0.0.1:${port}/readyz`, child);
    await sleep(settleMs);
    return memoryOf(child.pid).rss;
  } finally {
    await child.stop();
  }
}

async function qrunIdleRss(): Promise<number> {
  const dir = mkdtempSync(path.join(tmpdir(), 'qrun-idle-'));
  try {
    return await idleRss((port) =>
      startChild(process.execPath, [values.bin, 'start'], {
        env: {
          ...process.env,
          QRUN_DATA_DIR: path.join(dir, 'data'),
          QRUN_FILE_ROOT: path.join(dir, 'files'),
          QRUN_PORT: String(port),
          QRUN_LOG_LEVEL: 'warn',
        },
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const baselineRss = () =>
  idleRss((port) =>
    startChild(process.execPath, ['-e', BASELINE], { env: { ...process.env, PORT: String(port) } }),
  );

const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;
const qrun: number[] = [];
const baseline: number[] = [];
// Alternated, so that whatever else the machine does weighs on both alike.
for (let i = 0; i < runs; i++) {
  baseline.push(await baselineRss());
  qrun.push(await qrunIdleRss());
  process.stderr.write(`[idle] run ${i + 1}/${runs}: qrun ${mb(qrun[i]!)}, bare node ${mb(baseline[i]!)}\n`);
}
const q = median(qrun);
const b = median(baseline);
console.log(`qrun start, idle RSS:   ${mb(q)} (median of ${runs}; runs ${qrun.map(mb).join(', ')})`);
console.log(`bare node http server: ${mb(b)} (median of ${runs}; runs ${baseline.map(mb).join(', ')})`);
console.log(`ratio qrun ÷ bare:      ${(q / b).toFixed(2)}×`);
console.log(`qrun − bare:            ${mb(q - b)}`);
console.log(`target ≤ 100 MB:        ${q <= TARGET_BYTES ? 'met' : 'not met'}`);
if (q > TARGET_BYTES) process.exitCode = 1;
