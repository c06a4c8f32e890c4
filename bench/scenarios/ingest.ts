import { TABLE_QUERY, type Engine } from '../lib/databases.js';
import { mariadbClient, mysql2Stream, pgCursorRead, psqlCopy } from '../lib/references.js';
import { makeRow, ratioAtMost, type ResultRow, type Target } from '../lib/report.js';
import { median } from '../lib/stats.js';
import { log, timed } from '../lib/util.js';
import { connectionOf, rotated, type BenchContext } from './context.js';

/**
 * Scenarios 1 and 2: the whole pre-filled table through qrun (submit → `done`: read, encode, pages
 * written and synced, task recorded) against raw clients that read the same rows to nowhere.
 */
interface Contender {
  name: string;
  target?: Target;
  /** Runs `sql` once; returns the row count when the contender can tell it. */
  run: (sql: string) => Promise<number | undefined>;
}

export async function ingest(ctx: BenchContext, engine: Engine): Promise<ResultRow[]> {
  const { options, qrun } = ctx;
  const db = options.database;
  const connection = connectionOf(ctx, engine);
  const qrunContender: Contender = {
    name: 'qrun',
    run: async (sql) => {
      const result = await qrun.run(connection, sql);
      if (engine === 'postgresql' && sql === TABLE_QUERY) ctx.pgResultId = result.id;
      return result.count;
    },
  };
  const references: Contender[] =
    engine === 'postgresql'
      ? [
          // Issue 15: near the wire. qrun reads this query as COPY too, and must keep within twice psql.
          {
            name: 'psql \\copy to /dev/null',
            target: ratioAtMost(2),
            run: (sql) => psqlCopy(db, sql).then(() => undefined),
          },
          { name: 'pg + pg-cursor (batches of 10,000)', run: (sql) => pgCursorRead(db, sql) },
        ]
      : [
          { name: 'mysql2 row streaming', target: ratioAtMost(2), run: (sql) => mysql2Stream(db, sql) },
          { name: 'mariadb --quick -B -N', run: (sql) => mariadbClient(db, sql).then(() => undefined) },
        ];
  const contenders = [qrunContender, ...references];

  // Untimed warm-up on a tenth of the rows: JIT, connection paths, caches.
  const warmSql = `${TABLE_QUERY} LIMIT ${Math.max(1, Math.floor(options.rows / 10))}`;
  for (const c of contenders) await c.run(warmSql);

  const samples = new Map<Contender, number[]>(contenders.map((c) => [c, []]));
  for (let rep = 0; rep < options.reps; rep++) {
    for (const c of rotated(contenders, rep)) {
      const { seconds, value } = await timed(() => c.run(TABLE_QUERY));
      if (value !== undefined && value !== options.rows) {
        throw new Error(`${c.name} read ${value} rows, expected ${options.rows}`);
      }
      samples.get(c)!.push(seconds);
      log(`ingest ${engine} rep ${rep + 1}/${options.reps}: ${c.name} ${seconds.toFixed(3)} s`);
    }
  }

  const scenario = engine === 'postgresql' ? '1. Ingest, PostgreSQL' : '2. Ingest, MariaDB';
  const qrunSamples = samples.get(qrunContender)!;
  return references.map((ref) => {
    const refSamples = samples.get(ref)!;
    return makeRow({
      scenario,
      measure: `${options.rows.toLocaleString('en-US')} rows, submit → done`,
      unit: 's',
      qrun: median(qrunSamples),
      reference: { name: ref.name, value: median(refSamples) },
      target: ref.target,
      samples: { qrun: qrunSamples, reference: refSamples },
    });
  });
}
