import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Options } from '../lib/options.js';
import { Qrun } from '../lib/qrun.js';
import { makeRow, valueAtMost, type ResultRow } from '../lib/report.js';
import { median, percentile } from '../lib/stats.js';
import { log, timed } from '../lib/util.js';
import { rotated } from './context.js';

/** One way to run `SELECT 1` on the bench's SQLite file, timed per call. */
export interface SqliteContender {
  name: string;
  run: () => Promise<unknown>;
  stop?: () => Promise<void>;
}

/**
 * A `qrun start` (this checkout's, or another build's `bin`) with a SQLite connection to a file of its
 * organization; `file` is that file, for the reference.
 */
export async function qrunSqlite(
  bin: string | undefined,
  cpuProfDir?: string,
): Promise<SqliteContender & { file: string }> {
  const fileRoot = mkdtempSync(path.join(tmpdir(), 'qrun-bench-files-'));
  const qrun = await Qrun.start({ bin, cpuProfDir, env: { QRUN_FILE_ROOT: fileRoot } });
  try {
    const me = await qrun.call<{ data: { organization_id: string } }>('GET', '/api/me');
    const fileDir = path.join(fileRoot, me.data.organization_id);
    mkdirSync(fileDir, { recursive: true });
    const file = path.join(fileDir, 'bench.sqlite');
    new Database(file).exec('CREATE TABLE IF NOT EXISTS t (x)').close();
    const created = await qrun.call<{ data: { id: string } }>('POST', '/api/connections', {
      name: 'bench sqlite',
      type: 'sqlite',
      configuration: { path: 'bench.sqlite' },
    });
    return {
      name: bin === undefined ? 'qrun' : `qrun (${bin})`,
      run: () => qrun.run(created.data.id, 'SELECT 1'),
      stop: async () => {
        await qrun.stop();
        rmSync(fileRoot, { recursive: true, force: true });
      },
      file,
    };
  } catch (err) {
    await qrun.stop();
    rmSync(fileRoot, { recursive: true, force: true });
    throw err;
  }
}

/** The database work alone: better-sqlite3 opening the same file in this process, `SELECT 1`, closing. */
export function betterSqlite3(file: string): SqliteContender {
  return {
    name: 'better-sqlite3: open, SELECT 1, close',
    run: async () => {
      const db = new Database(file, { fileMustExist: true, readonly: true });
      db.prepare('SELECT 1').raw(true).all();
      db.close();
    },
  };
}

/** p50 per repetition of each contender, `queries` calls one at a time, rotated between repetitions. */
export async function p50s(
  contenders: readonly SqliteContender[],
  queries: number,
  reps: number,
): Promise<Map<string, number[]>> {
  for (const c of contenders) for (let i = 0; i < 10; i++) await c.run(); // warm-up
  const p50 = new Map(contenders.map((c) => [c.name, [] as number[]]));
  for (let rep = 0; rep < reps; rep++) {
    for (const c of rotated(contenders, rep)) {
      const ms: number[] = [];
      for (let i = 0; i < queries; i++) ms.push((await timed(c.run)).seconds * 1000);
      p50.get(c.name)!.push(percentile(ms, 50));
      log(
        `SQLite SELECT 1 rep ${rep + 1}/${reps}: ${c.name} p50 ${percentile(ms, 50).toFixed(2)} ms, ` +
          `p99 ${percentile(ms, 99).toFixed(2)} ms`,
      );
    }
  }
  return p50;
}

/**
 * Scenario 9: `SELECT 1` on a SQLite connection, submit → done with the ?wait= long-poll, one query at a
 * time. Target (issue 15, item 3): p50 ≤ 20 ms. The reference is the database work alone (no process, no
 * HTTP), so the ratio only shows what the rest costs.
 */
export async function smallSqlite(options: Options): Promise<ResultRow[]> {
  const qrun = await qrunSqlite(undefined, options.cpuProfDir);
  try {
    const reference = betterSqlite3(qrun.file);
    const p50 = await p50s([qrun, reference], options.smallQueries, options.reps);
    return [
      makeRow({
        scenario: '9. Small query, SQLite',
        measure: `SELECT 1 submit → done (?wait=), p50 of ${options.smallQueries}`,
        unit: 'ms',
        qrun: median(p50.get(qrun.name)!),
        reference: { name: reference.name, value: median(p50.get(reference.name)!) },
        target: valueAtMost(20, 'ms'),
        samples: { qrun: p50.get(qrun.name)!, reference: p50.get(reference.name)! },
      }),
    ];
  } finally {
    await qrun.stop?.();
  }
}
