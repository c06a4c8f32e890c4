import { generatedQuery } from '../lib/databases.js';
import { request } from '../lib/http.js';
import { PostgresMeta } from '../lib/peer.js';
import { Qrun, nextLink, statusHead } from '../lib/qrun.js';
import { makeRow, ratioAtLeast, type ResultRow } from '../lib/report.js';
import { median } from '../lib/stats.js';
import { log, timed } from '../lib/util.js';
import { rotated } from './context.js';
import type { Options } from '../lib/options.js';

/** Queries per repetition, and clients sending them at once (issue 15, item 6). */
const QUERIES = 400;
const CLIENTS = 40;
/** Queries that one qrun worker, and one connection, run at once here: the peer runs all 40 at once. */
const QRUN_CONCURRENCY = '10';

/**
 * The i-th query: 200 to 1,400 rows of the bench table's shape, the sizes spread evenly over the 400.
 * Generated, not read from the table: it has no index, and a scan of 1,000,000 rows per query would
 * measure PostgreSQL, not the two services.
 */
function queryOf(i: number): string {
  return generatedQuery('postgresql', 200 + ((i * 37) % 1201));
}

/**
 * Scenario 8: many small queries. 40 clients send 400 queries (200–1,400 rows each) as fast as they can;
 * each qrun client submits, long-polls until the query is done and reads every page (`links.next`); the
 * peer, @supabase/postgres-meta, answers the same SQL synchronously with one JSON array per request.
 * Queries per second, higher is better. qrun runs on its own process here with 10 queries at once per
 * worker and per connection (its defaults, 4 and 2, are for sharing a database, not for this race), and
 * as many long-polls per API key as there are clients.
 */
export async function many(options: Options): Promise<ResultRow[]> {
  const qrun = await Qrun.start({
    cpuProfDir: options.cpuProfDir,
    env: {
      QRUN_WORKER_CONCURRENCY: QRUN_CONCURRENCY,
      QRUN_CONNECTION_CONCURRENCY: QRUN_CONCURRENCY,
      // All 40 clients share one API key; at the default cap (20 long-polls per key) the other 20 would
      // be answered at once and poll again in a busy loop, which measures the cap, not the flow.
      QRUN_MAX_WAITS_PER_KEY: String(CLIENTS),
    },
  });
  const peer = await PostgresMeta.start(options.database).catch(async (err: unknown) => {
    await qrun.stop();
    throw err;
  });
  try {
    const connection = await qrun.createConnection('postgresql', options.database);
    const queries = options.smoke ? 20 : QUERIES;
    const clients = options.smoke ? 4 : CLIENTS;
    const contenders = [
      { name: 'qrun', run: (sql: string) => runAndRead(qrun, connection, sql) },
      {
        name: 'postgres-meta POST /query, synchronous',
        run: async (sql: string) => {
          await peer.query(sql);
        },
      },
    ];
    // Warm-up: one round of each at a tenth of the size.
    for (const c of contenders) await together(Math.max(1, queries / 10), clients, c.run);

    const rates = new Map(contenders.map((c) => [c.name, [] as number[]]));
    for (let rep = 0; rep < options.reps; rep++) {
      for (const c of rotated(contenders, rep)) {
        const { seconds } = await timed(() => together(queries, clients, c.run));
        rates.get(c.name)!.push(queries / seconds);
        log(
          `many small queries rep ${rep + 1}/${options.reps}: ${c.name} ${(queries / seconds).toFixed(1)}/s`,
        );
      }
    }
    const ref = contenders[1]!.name;
    return [
      makeRow({
        scenario: '8. Many small queries',
        measure: `queries/s: ${queries} queries of 200–1,400 rows, ${clients} clients, every page read`,
        unit: 'queries/s',
        qrun: median(rates.get('qrun')!),
        reference: { name: ref, value: median(rates.get(ref)!) },
        target: ratioAtLeast(1),
        samples: { qrun: rates.get('qrun')!, reference: rates.get(ref)! },
      }),
    ];
  } finally {
    await peer.stop();
    await qrun.stop();
  }
}

/** Runs queries 0…count-1 with `clients` of them in flight at once. */
async function together(count: number, clients: number, run: (sql: string) => Promise<void>): Promise<void> {
  let next = 0;
  const client = async () => {
    for (let i = next++; i < count; i = next++) await run(queryOf(i));
  };
  await Promise.all(Array.from({ length: clients }, client));
}

/** Submit, long-poll until done (its answer is the first page), then every further page. */
async function runAndRead(qrun: Qrun, connection: string, sql: string): Promise<void> {
  const { id } = await qrun.submit(connection, sql);
  const headers = { authorization: qrun.authorization };
  let body: Buffer;
  for (;;) {
    const res = await request(`${qrun.base}/api/queries/${id}?wait=60`, { headers });
    if (res.status !== 200) throw new Error(`GET /api/queries/${id}: ${res.status}`);
    const head = statusHead(res.body);
    if (head.status === 'done') {
      body = res.body;
      break;
    }
    if (head.status !== 'created' && head.status !== 'running')
      throw new Error(`query ${id} ended ${head.status}`);
  }
  for (let url = nextLink(body); url !== null; url = nextLink(body)) {
    const res = await request(qrun.base + url, { headers });
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
    body = res.body;
  }
}
