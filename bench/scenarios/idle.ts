import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Options } from '../lib/options.js';
import { makeRow, valueAtMost, type ResultRow } from '../lib/report.js';
import { median } from '../lib/stats.js';
import {
  MB,
  ROOT,
  freePort,
  log,
  memoryOf,
  sleep,
  startChild,
  waitForHttp,
  type Child,
} from '../lib/util.js';

/** The reference: a bare Node HTTP server with its own /readyz, nothing else loaded. */
const BASELINE = `
const http = require('node:http');
http.createServer((req, res) => res.end('ok')).listen(Number(process.env.PORT), '127.0.0.1');
`;

/** Starts a process, waits for /readyz and `settleMs`, reads its RSS, stops it. */
async function idleRss(start: (port: number) => Child, settleMs: number): Promise<number> {
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

/** A fresh `qrun start` of `bin` on a temporary data directory and file root: its idle RSS. */
function qrunIdleRss(bin: string, settleMs: number): Promise<number> {
  const dir = mkdtempSync(path.join(tmpdir(), 'qrun-idle-'));
  return idleRss(
    (port) =>
      startChild(process.execPath, [bin, 'start'], {
        env: {
          ...process.env,
          QRUN_DATA_DIR: path.join(dir, 'data'),
          QRUN_FILE_ROOT: path.join(dir, 'files'),
          QRUN_PORT: String(port),
          QRUN_LOG_LEVEL: 'warn',
        },
      }),
    settleMs,
  ).finally(() => rmSync(dir, { recursive: true, force: true }));
}

const baselineRss = (settleMs: number) =>
  idleRss(
    (port) => startChild(process.execPath, ['-e', BASELINE], { env: { ...process.env, PORT: String(port) } }),
    settleMs,
  );

/**
 * `runs` idle readings of `qrun start` (the compiled CLI `bin`) and of a bare node HTTP server, alternated
 * so that whatever else the machine does weighs on both alike; RSS in bytes.
 */
export async function idleReadings(
  bin: string,
  runs: number,
  settleMs: number,
): Promise<{ qrun: number[]; baseline: number[] }> {
  const qrun: number[] = [];
  const baseline: number[] = [];
  for (let i = 0; i < runs; i++) {
    baseline.push(await baselineRss(settleMs));
    qrun.push(await qrunIdleRss(bin, settleMs));
    log(`idle RSS run ${i + 1}/${runs}: qrun ${mb(qrun[i]!)}, bare node ${mb(baseline[i]!)}`);
  }
  return { qrun, baseline };
}

export const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;

/**
 * Scenario 10: idle memory (issue 15, item 5). The VmRSS of a fresh `qrun start` (embedded default) 5 s
 * after it answered /readyz, against a bare node HTTP server measured the same way. Target: ≤ 100 MB.
 */
export async function idle(options: Options): Promise<ResultRow[]> {
  const settleMs = options.smoke ? 1000 : 5000;
  const { qrun, baseline } = await idleReadings(
    path.join(ROOT, 'dist/src/cli/qrun.js'),
    options.reps,
    settleMs,
  );
  const toMb = (values: number[]) => values.map((v) => v / MB);
  return [
    makeRow({
      scenario: '10. Idle memory',
      measure: `RSS of qrun start, ${settleMs / 1000} s after /readyz`,
      unit: 'MB',
      qrun: median(qrun) / MB,
      reference: { name: 'bare node HTTP server', value: median(baseline) / MB },
      target: valueAtMost(100, 'MB'),
      samples: { qrun: toMb(qrun), reference: toMb(baseline) },
    }),
  ];
}
