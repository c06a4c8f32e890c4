/**
 * `npm run bench:sqlite-small`: `SELECT 1` on a SQLite connection through qrun, submit → done with the
 * `?wait=` long-poll, one query at a time (issue 15, item 3: target p50 ≤ 20 ms). The reference, measured in
 * the same run, is what the database work itself costs: better-sqlite3 opening the same file, `SELECT 1`,
 * closing, in this process.
 *
 * Run: npx tsx bench/sqlite-select-one.ts [--queries N] [--reps N] [--bin <qrun.js>]...
 * Each --bin is another build's dist/src/cli/qrun.js (default this checkout's); several run interleaved,
 * so a busy machine slows them alike.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { Qrun } from './lib/qrun.js';
import { median, percentile } from './lib/stats.js';
import { log, timed } from './lib/util.js';

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

interface Contender {
  name: string;
  run: () => Promise<unknown>;
  stop?: () => Promise<void>;
}

async function qrunContender(bin: string | undefined): Promise<Contender> {
  const fileRoot = mkdtempSync(path.join(tmpdir(), 'qrun-bench-files-'));
  const qrun = await Qrun.start({ bin, env: { QRUN_FILE_ROOT: fileRoot } });
  const me = await qrun.call<{ data: { organization_id: string } }>('GET', '/api/me');
  const fileDir = path.join(fileRoot, me.data.organization_id);
  mkdirSync(fileDir, { recursive: true });
  new Database(path.join(fileDir, 'bench.sqlite')).exec('CREATE TABLE IF NOT EXISTS t (x)').close();
  const created = await qrun.call<{ data: { id: string } }>('POST', '/api/connections', {
    name: 'bench sqlite',
    type: 'sqlite',
    configuration: { path: 'bench.sqlite' },
  });
  return {
    name: bin === undefined ? 'qrun (this checkout)' : `qrun (${bin})`,
    run: () => qrun.run(created.data.id, 'SELECT 1'),
    stop: async () => {
      await qrun.stop();
      rmSync(fileRoot, { recursive: true, force: true });
    },
    file: path.join(fileDir, 'bench.sqlite'),
  } as Contender & { file: string };
}

async function main(): Promise<void> {
  const contenders: (Contender & { file?: string })[] = [];
  try {
    for (const bin of bins) contenders.push(await qrunContender(bin));
    const file = contenders[0]!.file!;
    contenders.push({
      name: 'better-sqlite3: open, SELECT 1, close',
      run: async () => {
        const db = new Database(file, { fileMustExist: true, readonly: true });
        db.prepare('SELECT 1').raw(true).all();
        db.close();
      },
    });
    for (const c of contenders) for (let i = 0; i < 10; i++) await c.run(); // warm-up
    const p50 = new Map(contenders.map((c) => [c.name, [] as number[]]));
    for (let rep = 0; rep < reps; rep++) {
      for (const c of rep % 2 === 0 ? contenders : [...contenders].reverse()) {
        const ms: number[] = [];
        for (let i = 0; i < queries; i++) ms.push((await timed(c.run)).seconds * 1000);
        p50.get(c.name)!.push(percentile(ms, 50));
        log(
          `rep ${rep + 1}/${reps}: ${c.name} p50 ${percentile(ms, 50).toFixed(2)} ms, p99 ${percentile(ms, 99).toFixed(2)} ms`,
        );
      }
    }
    const reference = median(p50.get(contenders.at(-1)!.name)!);
    console.log(
      `\n| SQLite SELECT 1, submit → done, p50 of ${queries} (median of ${reps}) | ms | ÷ reference |`,
    );
    console.log('| --- | --: | --: |');
    for (const c of contenders) {
      const value = median(p50.get(c.name)!);
      console.log(`| ${c.name} | ${value.toFixed(2)} | ${(value / reference).toFixed(1)}× |`);
    }
  } finally {
    for (const c of contenders) await c.stop?.();
  }
}

await main();
