import { TABLE_QUERY, generatedQuery } from '../lib/databases.js';
import type { Options } from '../lib/options.js';
import { Qrun } from '../lib/qrun.js';
import { makeRow, type ResultRow } from '../lib/report.js';
import { median } from '../lib/stats.js';
import { log, timed } from '../lib/util.js';
import { rotated } from './context.js';
import { walkPages } from './readback.js';

/** Three repetitions at most: each takes about half a minute, and the bench should stay short. */
export const scaleOutReps = (reps: number) => Math.min(reps, 3);

/** Queries of the concurrent batch. */
const BATCH_QUERIES = 40;
const WORKERS = 2;

/**
 * Scenario 7 (information, no target): the scale-out deployment on this one machine, one `qrun api`
 * and two `qrun worker` processes on PostgreSQL metadata, Redis and S3 (s3rver), against the embedded
 * default doing the same work: one large ingest, the read-back of its pages through the api, and a
 * batch of queries submitted at once. Both run with the same per-process settings. On two cores the
 * extra processes, Redis and s3rver (a test double written in JavaScript, far slower than S3) can only
 * cost time; the figures show what the network hops cost, not how the deployment scales.
 */
export async function scaleOut(options: Options): Promise<ResultRow[]> {
  // Enough room per connection that the second worker has queries to take.
  const env = { QRUN_WORKER_CONCURRENCY: '4', QRUN_CONNECTION_CONCURRENCY: '8' };
  const embedded = await Qrun.start({ env });
  let scaled: Qrun | undefined;
  try {
    scaled = await Qrun.startScaleOut({ env, workers: WORKERS });
    const contenders = [
      {
        name: 'scale-out',
        qrun: scaled,
        connection: await scaled.createConnection('postgresql', options.database),
      },
      {
        name: 'embedded',
        qrun: embedded,
        connection: await embedded.createConnection('postgresql', options.database),
      },
    ];
    const perQuery = Math.max(1, Math.floor(options.rows / BATCH_QUERIES));
    // Generated rows: forty scans of the table would make this a PostgreSQL benchmark.
    const batch = Array.from({ length: BATCH_QUERIES }, () => generatedQuery('postgresql', perQuery));
    const pages = Math.ceil(options.rows / 1000);
    const samples = new Map(
      contenders.map((c) => [
        c.name,
        { ingest: [] as number[], readback: [] as number[], batch: [] as number[] },
      ]),
    );

    const reps = scaleOutReps(options.reps);
    for (let rep = 0; rep < reps; rep++) {
      for (const c of rotated(contenders, rep)) {
        const s = samples.get(c.name)!;
        const ingest = await timed(() => c.qrun.run(c.connection, TABLE_QUERY));
        if (ingest.value.count !== options.rows) {
          throw new Error(`${c.name}: ${ingest.value.count} rows, expected ${options.rows}`);
        }
        const readback = await timed(() => walkPages(c.qrun, ingest.value.id, false));
        if (readback.value.count !== pages) {
          throw new Error(`${c.name}: ${readback.value.count} pages, expected ${pages}`);
        }
        const together = await timed(() => Promise.all(batch.map((sql) => c.qrun.run(c.connection, sql))));
        const batchRows = together.value.reduce((sum, r) => sum + r.count, 0);
        if (batchRows !== perQuery * BATCH_QUERIES) {
          throw new Error(
            `${c.name}: the batch returned ${batchRows} rows, expected ${perQuery * BATCH_QUERIES}`,
          );
        }
        s.ingest.push(ingest.seconds);
        s.readback.push(readback.seconds);
        s.batch.push(together.seconds);
        log(
          `scale-out rep ${rep + 1}/${reps}: ${c.name} ingest ${ingest.seconds.toFixed(3)} s, ` +
            `read-back ${readback.seconds.toFixed(3)} s, batch ${together.seconds.toFixed(3)} s`,
        );
      }
    }
    const out = samples.get('scale-out')!;
    const ref = samples.get('embedded')!;
    const scenario = '7. Scale-out (information)';
    const reference = (values: number[]) => ({
      name: 'embedded default (qrun start)',
      value: median(values),
    });
    const row = (measure: string, key: 'ingest' | 'readback' | 'batch') =>
      makeRow({
        scenario,
        measure,
        unit: 's',
        qrun: median(out[key]),
        reference: reference(ref[key]),
        samples: { qrun: out[key], reference: ref[key] },
      });
    const rows = options.rows.toLocaleString('en-US');
    return [
      row(`1 api + ${WORKERS} workers, S3 on s3rver: ${rows} rows, submit → done`, 'ingest'),
      row(`the same: all ${pages.toLocaleString('en-US')} pages read back through the api`, 'readback'),
      row(
        `the same: ${BATCH_QUERIES} queries of ${perQuery.toLocaleString('en-US')} rows submitted at once, until all are done`,
        'batch',
      ),
    ];
  } finally {
    await scaled?.stop();
    await embedded.stop();
  }
}
