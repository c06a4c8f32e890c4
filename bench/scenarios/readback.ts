import { request } from '../lib/http.js';
import { PostgresMeta } from '../lib/peer.js';
import { TABLE_QUERY } from '../lib/databases.js';
import { nextLink, type Qrun } from '../lib/qrun.js';
import { makeRow, ratioAtMost, type ResultRow } from '../lib/report.js';
import { median } from '../lib/stats.js';
import { log, timed } from '../lib/util.js';
import { pgResult, rotated, type BenchContext } from './context.js';

/** One page: the host-relative URL qrun serves it at and its exact response bytes. */
export interface Page {
  url: string;
  body: Buffer;
}

/**
 * Fetches every page of a result in order by following links.next. Bodies are read in full but not
 * parsed (only the links at their tail), so the figure is the server's and the transfer's.
 */
export async function walkPages(
  qrun: Qrun,
  id: string,
  keep: boolean,
): Promise<{ pages: Page[]; count: number }> {
  const pages: Page[] = [];
  let count = 0;
  let url: string | null = `/api/queries/${id}`;
  while (url !== null) {
    const { status, body } = await request(qrun.base + url, {
      headers: { authorization: qrun.authorization },
    });
    if (status !== 200) throw new Error(`GET ${url}: ${status} ${body.toString().slice(0, 300)}`);
    if (keep) pages.push({ url, body });
    count++;
    url = nextLink(body);
  }
  return { pages, count };
}

/** Scenario 3: every 1,000-row page over HTTP against postgres-meta's single JSON answer. */
export async function readback(ctx: BenchContext): Promise<ResultRow[]> {
  const { options, qrun } = ctx;
  const id = await pgResult(ctx, TABLE_QUERY);
  const expectedPages = Math.ceil(options.rows / 1000);
  const peer = await PostgresMeta.start(options.database);
  try {
    // The peer's answer is checked once, row for row, where that is cheap enough.
    const first = await peer.query(TABLE_QUERY);
    if (options.rows <= 100_000 && (JSON.parse(first.toString()) as unknown[]).length !== options.rows) {
      throw new Error('postgres-meta did not return every row');
    }
    await walkPages(qrun, id, false);

    const contenders = [
      {
        name: 'qrun',
        run: async () => {
          const { count } = await walkPages(qrun, id, false);
          if (count !== expectedPages)
            throw new Error(`qrun served ${count} pages, expected ${expectedPages}`);
        },
      },
      {
        name: 'postgres-meta',
        run: async () => {
          const body = await peer.query(TABLE_QUERY);
          if (body[0] !== 0x5b || body[body.length - 1] !== 0x5d)
            throw new Error('postgres-meta: not a JSON array');
        },
      },
    ];
    const samples = new Map(contenders.map((c) => [c.name, [] as number[]]));
    for (let rep = 0; rep < options.reps; rep++) {
      for (const c of rotated(contenders, rep)) {
        const { seconds } = await timed(c.run);
        samples.get(c.name)!.push(seconds);
        log(`read-back rep ${rep + 1}/${options.reps}: ${c.name} ${seconds.toFixed(3)} s`);
      }
    }
    const q = samples.get('qrun')!;
    const p = samples.get('postgres-meta')!;
    return [
      makeRow({
        scenario: '3. Read-back',
        measure: `all ${expectedPages.toLocaleString('en-US')} pages (1,000 rows) over HTTP`,
        unit: 's',
        qrun: median(q),
        reference: { name: 'postgres-meta POST /query (one JSON answer)', value: median(p) },
        target: ratioAtMost(1.0),
        samples: { qrun: q, reference: p },
      }),
    ];
  } finally {
    await peer.stop();
  }
}
