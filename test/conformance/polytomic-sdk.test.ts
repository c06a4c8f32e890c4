import { Polytomic, PolytomicClient } from 'polytomic';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { conforms } from './polytomic-schemas.js';

/**
 * The query-runner flow driven by Polytomic's own TypeScript SDK (npm `polytomic`, 1.18.1: the one the
 * registry has), pointed at qrun with `environment` (the base URL) and a user key as its `token`, which
 * it sends as `Authorization: Bearer …` (the SDK knows no Basic: organization keys are for other
 * clients). Nothing here knows qrun: what the SDK returns is what a Polytomic client sees.
 */

const ROWS = 250;
const PAGE_ROWS = 100;

let s: TestServer;
let client: PolytomicClient;

beforeAll(async () => {
  s = await startTestServer({ QRUN_PAGE_ROWS: String(PAGE_ROWS) });
  client = new PolytomicClient({ environment: s.url, token: s.adminKey, version: '2025-09-18' });
});

afterAll(async () => {
  await s?.close();
});

/** The `page` token of a `links.next` / `links.previous` URL, which the SDK takes as a parameter. */
function pageOf(link: string): string {
  const page = new URL(link, s.url).searchParams.get('page');
  if (!page) throw new Error(`no page token in ${link}`);
  return page;
}

describe('the official polytomic SDK', () => {
  it('identity, a MySQL connection under Polytomic’s field names, run query, get query, every page', async () => {
    const me = await client.identity.get();
    conforms('GetIdentityResponseEnvelope', me, 'identity.get()', {
      at: (b) => b.data,
      filled: ['id', 'email'],
    });
    expect(me.data).toMatchObject({ email: 'admin@localhost', is_user: true, is_system: false });

    const created = await client.connections.create({
      name: 'sdk mariadb',
      type: 'mysql',
      configuration: {
        hostname: '127.0.0.1',
        port: 3306,
        account: 'root',
        passwd: '',
        dbname: 'test',
        ssl: false,
      },
      healthcheck_interval: '3h30m',
    });
    conforms('CreateConnectionResponseEnvelope', created, 'connections.create()', {
      at: (b) => b.data,
      filled: ['id', 'name', 'status', 'saved', 'healthcheck_interval', 'type'],
    });
    expect(created.data).toMatchObject({
      status: 'healthy',
      saved: true,
      healthcheck_interval: '3h30m',
      configuration: { hostname: '127.0.0.1', port: 3306, account: 'root', dbname: 'test', ssl: false },
      type: { id: 'mysql', operations: expect.arrayContaining(['query']) },
    });
    const connectionId = created.data!.id!;
    const got = await client.connections.get(connectionId);
    conforms('ConnectionResponseEnvelope', got, 'connections.get()', { at: (b) => b.data, filled: ['id'] });
    expect(got.data?.created_by).toEqual({ id: me.data!.id, name: 'admin@localhost', type: 'user' });
    const listed = await client.connections.list();
    expect(listed.data?.map((c) => c.id)).toContain(connectionId);

    const submitted = await client.queryRunner.runQuery(connectionId, {
      query: `SELECT seq AS n, CONCAT('row ', seq) AS label FROM seq_1_to_${ROWS} ORDER BY seq`,
    });
    conforms('RunQueryEnvelope', submitted, 'queryRunner.runQuery()', {
      at: (b) => b.data,
      filled: ['id', 'status'],
    });
    expect(submitted.data?.status).toBe(Polytomic.WorkTaskStatus.Created);
    const id = submitted.data!.id!;

    // As Polytomic's docs say: poll until done or failed.
    const first = await waitUntil('the query to end, read through the SDK', async () => {
      const r = await client.queryRunner.getQuery(id);
      return r.data?.status === 'done' || r.data?.status === 'failed' ? r : undefined;
    });
    conforms('QueryResultsEnvelope', first, 'queryRunner.getQuery()', {
      at: (b) => b.data,
      filled: ['id', 'status', 'fields', 'count', 'expires', 'results'],
    });
    expect(first.data).toMatchObject({ status: 'done', count: ROWS, fields: ['n', 'label'] });

    const rows: unknown[] = [];
    let page = first;
    for (;;) {
      rows.push(...page.data!.results!);
      const next = page.links?.next;
      if (!next) break;
      page = await client.queryRunner.getQuery(id, { page: pageOf(next) });
      conforms('QueryResultsEnvelope', page, 'a page', { at: (b) => b.data, filled: ['status', 'results'] });
    }
    expect(rows).toHaveLength(ROWS);
    expect(rows.map((r) => (r as { n: number }).n)).toEqual(Array.from({ length: ROWS }, (_, i) => i + 1));
    expect(rows[ROWS - 1]).toEqual({ n: ROWS, label: `row ${ROWS}` });
  });

  it('the same flow on PostgreSQL, and a failed query ends failed with its error', async () => {
    const created = await client.connections.create({
      name: 'sdk postgres',
      type: 'postgresql',
      configuration: { hostname: '127.0.0.1', port: 5432, database: 'test', username: 'postgres' },
    });
    const connectionId = created.data!.id!;
    const submitted = await client.queryRunner.runQuery(connectionId, {
      query: 'select * from no_such_table_sdk',
    });
    const ended = await waitUntil('the query to end', async () => {
      const r = await client.queryRunner.getQuery(submitted.data!.id!);
      return r.data?.status === 'done' || r.data?.status === 'failed' ? r : undefined;
    });
    conforms('QueryResultsEnvelope', ended, 'a failed query', {
      at: (b) => b.data,
      filled: ['status', 'error'],
    });
    expect(ended.data?.status).toBe(Polytomic.WorkTaskStatus.Failed);
    expect(ended.data?.error).toContain('no_such_table_sdk');
  });

  it("raises the SDK's own errors with qrun's ApiError body", async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    const err = await client.queryRunner.getQuery(missing).then(
      () => new Error('answered'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Polytomic.NotFoundError);
    conforms('ApiError', (err as Polytomic.NotFoundError).body, 'NotFoundError.body', {
      filled: ['status', 'key', 'message'],
    });
    const bad = await new PolytomicClient({ environment: s.url, token: 'qrun_u_wrong' }).identity.get().then(
      () => new Error('answered'),
      (e: unknown) => e,
    );
    expect(bad).toBeInstanceOf(Polytomic.UnauthorizedError);
  });
});
