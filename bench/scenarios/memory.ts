import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { generatedQuery, type Engine } from '../lib/databases.js';
import type { Options } from '../lib/options.js';
import { Qrun } from '../lib/qrun.js';
import { makeRow, valueAtMost, type ResultRow } from '../lib/report.js';
import { median } from '../lib/stats.js';
import { MB, log, memoryOf, sleep, timed } from '../lib/util.js';

export interface MemoryRun {
  engine: Engine;
  rows: number;
  /** RSS once a connection exists (its driver loaded), before the query. */
  idleRss: number;
  /** VmHWM at the end: the kernel's own high-water mark, so a spike between samples still counts. */
  peakRss: number;
  /** The highest 100 ms sample, as a cross-check of VmHWM. */
  maxSampledRss: number;
  endRss: number;
  seconds: number;
  pageBytes: number;
}

function diskBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const s = statSync(path.join(dir, entry));
    if (s.isFile()) total += s.size;
  }
  return total;
}

/**
 * One fresh qrun process, one query of `rows` generated rows end to end (database → pages on disk →
 * done), with the process's RSS sampled every 100 ms. A fresh process per run keeps VmHWM about this
 * query alone.
 */
export async function measureMemory(
  engine: Engine,
  rows: number,
  database: string,
  cpuProfDir?: string,
): Promise<MemoryRun> {
  const qrun = await Qrun.start({ cpuProfDir });
  try {
    const connection = await qrun.createConnection(engine, database);
    // Let start-up garbage settle before the idle reading.
    await sleep(1000);
    const idle = memoryOf(qrun.pid);
    let maxSampledRss = idle.rss;
    const sampler = setInterval(() => {
      try {
        maxSampledRss = Math.max(maxSampledRss, memoryOf(qrun.pid).rss);
      } catch {
        // the process is gone; run() reports it
      }
    }, 100);
    let seconds: number;
    try {
      const { seconds: s, value } = await timed(() => qrun.run(connection, generatedQuery(engine, rows)));
      if (value.count !== rows) throw new Error(`qrun returned ${value.count} rows, expected ${rows}`);
      seconds = s;
    } finally {
      clearInterval(sampler);
    }
    const end = memoryOf(qrun.pid);
    return {
      engine,
      rows,
      idleRss: idle.rss,
      peakRss: end.hwm,
      maxSampledRss: Math.max(maxSampledRss, end.rss),
      endRss: end.rss,
      seconds,
      pageBytes: diskBytes(qrun.resultsDir),
    };
  } finally {
    await qrun.stop();
  }
}

/** Scenario 6: peak RSS − idle RSS during a 5,000,000-row query, PostgreSQL and MariaDB. */
export async function memory(options: Options, engines: Engine[]): Promise<ResultRow[]> {
  const rows: ResultRow[] = [];
  for (const engine of engines) {
    const runs: MemoryRun[] = [];
    for (let rep = 0; rep < options.memoryReps; rep++) {
      const run = await measureMemory(engine, options.memoryRows, options.database, options.cpuProfDir);
      runs.push(run);
      log(
        `memory ${engine} rep ${rep + 1}/${options.memoryReps}: idle ${(run.idleRss / MB).toFixed(1)} MB, ` +
          `peak ${(run.peakRss / MB).toFixed(1)} MB, ${run.seconds.toFixed(1)} s`,
      );
    }
    const name = engine === 'postgresql' ? 'PostgreSQL' : 'MariaDB';
    const growth = runs.map((r) => (r.peakRss - r.idleRss) / MB);
    const idle = median(runs.map((r) => r.idleRss / MB));
    const peak = median(runs.map((r) => r.peakRss / MB));
    const n = options.memoryRows.toLocaleString('en-US');
    rows.push(
      makeRow({
        scenario: `6. Memory, ${name}`,
        measure: `peak RSS − idle RSS, ${n}-row query (idle ${idle.toFixed(1)} MB, peak ${peak.toFixed(1)} MB)`,
        unit: 'MB',
        qrun: median(growth),
        target: valueAtMost(150, 'MB'),
        samples: { qrun: growth },
      }),
      makeRow({
        scenario: `6. Memory, ${name}`,
        measure: `${n} rows, submit → done (information)`,
        unit: 's',
        qrun: median(runs.map((r) => r.seconds)),
        samples: { qrun: runs.map((r) => r.seconds) },
      }),
    );
  }
  return rows;
}
