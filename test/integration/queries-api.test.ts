import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testClock } from '../helpers/clock.js';
import { startTestServer, type Auth, type TestServer } from '../helpers/server.js';
import { waitForQueryEnd, waitUntil } from '../helpers/wait.js';

const pgConfig = { hostname: '127.0.0.1', port: 5432, database: 'test', username: 'postgres' };

let s: TestServer;
let connectionId: string;
let admin: Auth;

async function createConnection(server: TestServer, auth: Auth): Promise<string> {
  const c = await server.request('POST', '/api/connections', {
    auth,
    body: { name: 'pg', type: 'postgresql', configuration: pgConfig },
  });
  expect(c.status).toBe(200);
  return c.body.data.id;
}

async function submit(
  server: TestServer,
  auth: Auth,
  connection: string,
  body: unknown,
  headers?: Record<string, string>,
) {
  return server.request('POST', `/api/connections/${connection}/query`, { auth, body, headers });
}

function waitDone(server: TestServer, auth: Auth, id: string) {
  return waitForQueryEnd(server, auth, id);
}

/** Waits until the query is running (a status it must pass through, so ending first is a failure). */
async function waitRunning(server: TestServer, auth: Auth, id: string): Promise<void> {
  await waitUntil(`query ${id} to run`, async () => {
    const status = (await server.request('GET', `/api/queries/${id}`, { auth })).body.data.status;
    if (['done', 'failed'].includes(status)) throw new Error(`query ${id} ended ${status} first`);
    return status === 'running';
  });
}

async function myQueryCount(server: TestServer, auth: Auth): Promise<number> {
  const r = await server.request('GET', '/api/queries?limit=200', { auth });
  return r.body.data.length;
}

async function newUser(server: TestServer, email: string, role: 'admin' | 'user' = 'user'): Promise<Auth> {
  const me = await server.request('GET', '/api/me', { auth: { bearer: server.adminKey } });
  const org = me.body.data.organization_id;
  const u = await server.request('POST', `/api/organizations/${org}/users`, {
    auth: { bearer: server.adminKey },
    body: { email, role },
  });
  const k = await server.request('POST', `/api/organizations/${org}/users/${u.body.data.id}/keys`, {
    auth: { bearer: server.adminKey },
  });
  return { bearer: k.body.data.value };
}

beforeAll(async () => {
  s = await startTestServer({ QRUN_MAX_QUERY_BYTES: '1024', QRUN_PAGE_ROWS: '10' });
  admin = { bearer: s.adminKey };
  connectionId = await createConnection(s, admin);
});
afterAll(() => s.close());

describe('submitting', () => {
  it('takes the SQL from the body, from ?query= with an empty body, and from ?query= with no body', async () => {
    const a = await submit(s, admin, connectionId, { query: 'select 1 as x' });
    const b = await s.request(
      'POST',
      `/api/connections/${connectionId}/query?query=${encodeURIComponent('select 2 as x')}`,
      {
        auth: admin,
        body: {},
      },
    );
    const c = await s.request(
      'POST',
      `/api/connections/${connectionId}/query?query=${encodeURIComponent('select 3 as x')}`,
      {
        auth: admin,
      },
    );
    const same = await s.request(
      'POST',
      `/api/connections/${connectionId}/query?query=${encodeURIComponent('select 4 as x')}`,
      {
        auth: admin,
        body: { query: 'select 4 as x' },
      },
    );
    // A JSON content type with an empty body counts as no body.
    const emptyJson = await s.request(
      'POST',
      `/api/connections/${connectionId}/query?query=${encodeURIComponent('select 5 as x')}`,
      { auth: admin, rawBody: '', headers: { 'content-type': 'application/json' } },
    );
    for (const [r, x] of [
      [a, 1],
      [b, 2],
      [c, 3],
      [same, 4],
      [emptyJson, 5],
    ] as const) {
      expect(r.status).toBe(200);
      expect(r.body.data.status).toBe('created');
      const done = await waitDone(s, admin, r.body.data.id);
      expect(done.body.data.results).toEqual([{ x }]);
    }
  });

  const bad: [string, unknown, string, number, string][] = [
    ['missing query', {}, '', 400, 'query_required'],
    ['empty query', { query: '' }, '', 400, 'query_required'],
    ['blank query', { query: '  \n ' }, '', 400, 'query_required'],
    ['body and URL differ', { query: 'select 1' }, '?query=select%202', 400, 'query_conflict'],
    ['query over the limit', { query: `select '${'x'.repeat(2000)}'` }, '', 413, 'query_too_large'],
    ['parameters not an array', { query: 'select 1', parameters: 'a' }, '', 400, 'invalid_request'],
    ['object parameter', { query: 'select $1', parameters: [{ a: 1 }] }, '', 400, 'invalid_request'],
    ['array parameter', { query: 'select $1', parameters: [[1]] }, '', 400, 'invalid_request'],
    ['timeout as a string', { query: 'select 1', timeout_seconds: '5' }, '', 400, 'invalid_request'],
    ['timeout zero', { query: 'select 1', timeout_seconds: 0 }, '', 400, 'invalid_request'],
    ['timeout fractional', { query: 'select 1', timeout_seconds: 1.5 }, '', 400, 'invalid_request'],
    [
      'timeout above the operator limit',
      { query: 'select 1', timeout_seconds: 999_999 },
      '',
      400,
      'invalid_timeout',
    ],
    ['max_rows negative', { query: 'select 1', max_rows: -1 }, '', 400, 'invalid_request'],
    ['max_rows beyond any store', { query: 'select 1', max_rows: 1e20 }, '', 400, 'invalid_request'],
    ['timeout beyond any store', { query: 'select 1', timeout_seconds: 1e20 }, '', 400, 'invalid_request'],
    ['page_rows zero', { query: 'select 1', page_rows: 0 }, '', 400, 'invalid_request'],
    ['page_rows fractional', { query: 'select 1', page_rows: 2.5 }, '', 400, 'invalid_request'],
    ['page_rows as a string', { query: 'select 1', page_rows: '10' }, '', 400, 'invalid_request'],
    [
      'page_rows above QRUN_PAGE_ROWS_MAX',
      { query: 'select 1', page_rows: 10_001 },
      '',
      400,
      'invalid_page_rows',
    ],
    ['page_rows beyond any setting', { query: 'select 1', page_rows: 1e7 }, '', 400, 'invalid_request'],
    ['unknown field', { query: 'select 1', querry: 'x' }, '', 400, 'unknown_field'],
    ['NUL in the query', { query: 'select 1 \u0000' }, '', 400, 'invalid_request'],
  ];
  it.each(bad)('%s is rejected and nothing is created', async (_name, body, qs, status, key) => {
    const before = await myQueryCount(s, admin);
    const r = await s.request('POST', `/api/connections/${connectionId}/query${qs}`, { auth: admin, body });
    expect(r.status).toBe(status);
    expect(r.body.key).toBe(key);
    expect(r.body.message.length).toBeGreaterThan(10);
    expect(await myQueryCount(s, admin)).toBe(before);
  });

  it('a page_rows out of range is a 400 that names the field', async () => {
    for (const pageRows of [0, 10_001, 1e7]) {
      const r = await submit(s, admin, connectionId, { query: 'select 1', page_rows: pageRows });
      expect(r.status, String(pageRows)).toBe(400);
      expect(r.body.metadata?.field ?? r.body.message, r.text).toMatch(/page_rows/);
    }
  });

  it('page_rows sets the rows per page (QRUN_PAGE_ROWS is 10 here); QRUN_PAGE_BYTES still caps a page', async () => {
    const r = await submit(s, admin, connectionId, {
      query: 'select n from generate_series(1, 95) n order by n',
      page_rows: 40,
    });
    let page = await waitDone(s, admin, r.body.data.id);
    const sizes: number[] = [];
    for (;;) {
      sizes.push(page.body.data.results.length);
      if (!page.body.links.next) break;
      page = await s.request('GET', page.body.links.next, { auth: admin });
    }
    expect(sizes).toEqual([40, 40, 15]);

    // Rows of about 600 bytes of JSON in pages of at most 4 KiB: the byte limit cuts before 100 rows.
    const small = await startTestServer({ QRUN_PAGE_BYTES: '4096' });
    try {
      const auth = { bearer: small.adminKey };
      const conn = await createConnection(small, auth);
      const wide = await submit(small, auth, conn, {
        query: "select n, repeat('x', 600) as pad from generate_series(1, 20) n",
        page_rows: 100,
      });
      const first = await waitDone(small, auth, wide.body.data.id);
      expect(first.body.data.count).toBe(20);
      expect(first.body.data.results.length).toBeLessThan(20);
      expect(first.body.links.next).not.toBeNull();
    } finally {
      await small.close();
    }
  });

  it('page_rows is part of the request an Idempotency-Key fixes', async () => {
    const headers = { 'idempotency-key': 'page-rows-key-0001' };
    const a = await submit(s, admin, connectionId, { query: 'select 1', page_rows: 5 }, headers);
    expect(a.status).toBe(200);
    const same = await submit(s, admin, connectionId, { query: 'select 1', page_rows: 5 }, headers);
    expect(same.body).toEqual(a.body);
    const other = await submit(s, admin, connectionId, { query: 'select 1', page_rows: 6 }, headers);
    expect(other.status).toBe(422);
    expect(other.body.key).toBe('idempotency_mismatch');
  });

  it('a malformed connection id is 400 invalid_id; an unknown one is 404', async () => {
    const bad = await submit(s, admin, 'nope', { query: 'select 1' });
    expect(bad.status).toBe(400);
    expect(bad.body.key).toBe('invalid_id');
    const unknown = await submit(s, admin, '00000000-0000-4000-8000-000000000000', { query: 'select 1' });
    expect(unknown.status).toBe(404);
  });

  it("another organization's connection is 404 at submit", async () => {
    const partner = { bearer: s.partnerKey };
    const org = await s.request('POST', '/api/organizations', { auth: partner, body: { name: 'elsewhere' } });
    const user = await s.request('POST', `/api/organizations/${org.body.data.id}/users`, {
      auth: partner,
      body: { email: 'x@elsewhere.example', role: 'admin' },
    });
    const key = await s.request(
      'POST',
      `/api/organizations/${org.body.data.id}/users/${user.body.data.id}/keys`,
      {
        auth: partner,
      },
    );
    const r = await submit(s, { bearer: key.body.data.value }, connectionId, { query: 'select 1' });
    expect(r.status).toBe(404);
  });

  it('binds parameters instead of splicing them', async () => {
    const evil = "'); drop table if exists qrun_never; --";
    const r = await submit(s, admin, connectionId, {
      query: 'select $1::text as a, $2::int as b, $3::bool as c, $4::text as d',
      parameters: [evil, 42, true, null],
    });
    const done = await waitDone(s, admin, r.body.data.id);
    expect(done.body.data.results).toEqual([{ a: evil, b: 42, c: true, d: null }]);
  });
});

describe('reading', () => {
  it('only the creator can read a query, whatever its status', async () => {
    const bob = await newUser(s, 'bob@reading.example');
    const me = await s.request('GET', '/api/me', { auth: admin });
    const orgKey = await s.request('POST', `/api/organizations/${me.body.data.organization_id}/keys`, {
      auth: admin,
    });
    const org = { basic: orgKey.body.data.value as string };

    const slow = await submit(s, admin, connectionId, { query: 'select pg_sleep(2) as slept' });
    const id = slow.body.data.id;
    for (const other of [bob, org]) {
      const r = await s.request('GET', `/api/queries/${id}`, { auth: other });
      expect(r.status).toBe(404);
      expect((await s.request('POST', `/api/queries/${id}/cancel`, { auth: other })).status).toBe(404);
    }
    await waitDone(s, admin, id);
    for (const other of [bob, org])
      expect((await s.request('GET', `/api/queries/${id}`, { auth: other })).status).toBe(404);

    // The organization key's own queries are its own.
    const mine = await submit(s, org, connectionId, { query: 'select 1 as one' });
    expect((await waitDone(s, org, mine.body.data.id)).body.data.results).toEqual([{ one: 1 }]);
    expect((await s.request('GET', `/api/queries/${mine.body.data.id}`, { auth: admin })).status).toBe(404);
  });

  it('while created or running, id and status, and the queue position or the progress', async () => {
    const r = await submit(s, admin, connectionId, { query: 'select pg_sleep(1)' });
    const g = await s.request('GET', `/api/queries/${r.body.data.id}`, { auth: admin });
    const extension = g.body.data.status === 'created' ? 'queue_position' : 'progress';
    expect(Object.keys(g.body.data).sort()).toEqual([extension, 'id', 'status'].sort());
    expect(g.body.links).toBeUndefined();
    await waitDone(s, admin, r.body.data.id);
  });

  it('400 invalid_id and 404 for malformed and unknown ids', async () => {
    const bad = await s.request('GET', '/api/queries/123', { auth: admin });
    expect(bad.status).toBe(400);
    expect(bad.body.key).toBe('invalid_id');
    const unknown = await s.request('GET', '/api/queries/00000000-0000-4000-8000-000000000000', {
      auth: admin,
    });
    expect(unknown.status).toBe(404);
  });

  it('page tokens are bound to their query and tamper-proof', async () => {
    const a = await submit(s, admin, connectionId, { query: 'select n from generate_series(1, 35) n' });
    const b = await submit(s, admin, connectionId, { query: 'select n from generate_series(1, 35) n' });
    const first = await waitDone(s, admin, a.body.data.id);
    await waitDone(s, admin, b.body.data.id);
    const next: string = first.body.links.next;
    const token = decodeURIComponent(next.split('page=')[1]!);
    const flipped = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    for (const t of ['garbage', token.slice(0, 10), flipped, '', '%%%']) {
      const r = await s.request('GET', `/api/queries/${a.body.data.id}?page=${encodeURIComponent(t)}`, {
        auth: admin,
      });
      expect(r.status, t).toBe(400);
      expect(r.body.key).toBe('invalid_page_token');
    }
    const foreign = await s.request(
      'GET',
      `/api/queries/${b.body.data.id}?page=${encodeURIComponent(token)}`,
      { auth: admin },
    );
    expect(foreign.status).toBe(400);
    expect(foreign.body.key).toBe('invalid_page_token');
  });

  it('following links.next from page 1 visits every row once, in order', async () => {
    const r = await submit(s, admin, connectionId, {
      query: 'select n from generate_series(1, 95) n order by n',
    });
    let page = await waitDone(s, admin, r.body.data.id);
    expect(page.body.links.previous).toBeNull();
    const seen: number[] = [];
    let pages = 0;
    for (;;) {
      pages++;
      expect(page.body.data.count).toBe(95);
      seen.push(...page.body.data.results.map((x: { n: number }) => x.n));
      if (!page.body.links.next) break;
      const prev = page;
      page = await s.request('GET', page.body.links.next, { auth: admin });
      expect(page.status).toBe(200);
      // previous leads back to the page we came from.
      const back = await s.request('GET', page.body.links.previous, { auth: admin });
      expect(back.body.data.results).toEqual(prev.body.data.results);
    }
    expect(pages).toBe(10);
    expect(seen).toEqual(Array.from({ length: 95 }, (_, i) => i + 1));
  });

  it('wait must be a whole number from 0 to 60', async () => {
    const r = await submit(s, admin, connectionId, { query: 'select 1' });
    for (const w of ['61', '-1', 'soon', '1.5']) {
      const g = await s.request('GET', `/api/queries/${r.body.data.id}?wait=${w}`, { auth: admin });
      expect(g.status, w).toBe(400);
      expect(g.body.key).toBe('invalid_wait');
    }
  });

  it('statements without rows end done with empty fields and results', async () => {
    const r = await submit(s, admin, connectionId, {
      query: 'create temporary table qrun_tmp_norows (a int)',
    });
    const done = await waitDone(s, admin, r.body.data.id);
    expect(done.body.data).toMatchObject({ status: 'done', fields: [], count: 0, results: [] });
    expect(done.body.links).toEqual({
      next: null,
      previous: null,
      export: `/api/queries/${r.body.data.id}/export`,
    });
  });

  it('a database error ends failed with its message and leaves no pages', async () => {
    const r = await submit(s, admin, connectionId, {
      query: 'select case when n > 55 then 1 / (n - n) else n end as n from generate_series(1, 100) n',
    });
    const done = await waitDone(s, admin, r.body.data.id);
    expect(done.body.data.status).toBe('failed');
    expect(done.body.data.error).toMatch(/division by zero/);
    expect(done.body.data.error_details).toEqual({
      code: 'division_by_zero',
      sqlstate: '22012',
      retryable: false,
      position: null,
    });
    expect(done.body.data.results).toBeUndefined();
    expect(await s.pagesExist(r.body.data.id)).toBe(false);
  });

  it('a syntax error is accepted at submit and ends failed, with where PostgreSQL found it', async () => {
    const r = await submit(s, admin, connectionId, { query: 'selec 1' });
    expect(r.status).toBe(200);
    const done = await waitDone(s, admin, r.body.data.id);
    expect(done.body.data.status).toBe('failed');
    expect(done.body.data.error).toMatch(/syntax error/);
    expect(done.body.data.error_details).toEqual({
      code: 'syntax_error',
      sqlstate: '42601',
      retryable: false,
      position: 1,
    });
    // 1-based characters of the SQL as sent: "é" is one character (two bytes), so the column starts at 20 (21 in bytes).
    const column = await submit(s, admin, connectionId, { query: "select 'é' as a,\n  missing_column" });
    const missing = await waitDone(s, admin, column.body.data.id);
    expect(missing.body.data.error_details).toMatchObject({
      code: 'undefined_column',
      sqlstate: '42703',
      position: 20,
    });
  });

  it('max_rows cuts the result short and says so', async () => {
    const r = await submit(s, admin, connectionId, {
      query: 'select n from generate_series(1, 50) n',
      max_rows: 7,
    });
    const done = await waitDone(s, admin, r.body.data.id);
    expect(done.body.data).toMatchObject({ count: 7, truncated: true });
  });
});

describe('listing', () => {
  it("lists only the caller's queries, newest first, with a cursor", async () => {
    const carol = await newUser(s, 'carol@list.example');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await submit(s, carol, connectionId, { query: `select ${i}` })).body.data.id);
    const first = await s.request('GET', '/api/queries?limit=2', { auth: carol });
    expect(first.body.data.map((q: { id: string }) => q.id)).toEqual([ids[4], ids[3]]);
    const second = await s.request('GET', first.body.links.next, { auth: carol });
    expect(second.body.data.map((q: { id: string }) => q.id)).toEqual([ids[2], ids[1]]);
    const third = await s.request('GET', second.body.links.next, { auth: carol });
    expect(third.body.data.map((q: { id: string }) => q.id)).toEqual([ids[0]]);
    expect(third.body.links.next).toBeNull();
    const adminList = await s.request('GET', '/api/queries?limit=200', { auth: admin });
    expect(adminList.body.data.some((q: { id: string }) => ids.includes(q.id))).toBe(false);
  });

  it('a listed query carries error_details: null unless it failed', async () => {
    const erin = await newUser(s, 'erin@list.example');
    const ok = (await submit(s, erin, connectionId, { query: 'select 1' })).body.data.id;
    const bad = (await submit(s, erin, connectionId, { query: 'select 1/0' })).body.data.id;
    await waitDone(s, erin, ok);
    await waitDone(s, erin, bad);
    const list = await s.request('GET', '/api/queries', { auth: erin });
    const byId = Object.fromEntries(list.body.data.map((q: { id: string }) => [q.id, q]));
    expect(byId[ok]).toMatchObject({ status: 'done', error: null, error_details: null });
    expect(byId[bad]).toMatchObject({
      status: 'failed',
      error_details: { code: 'division_by_zero', sqlstate: '22012', retryable: false, position: null },
    });
  });

  it('rejects a bad limit or cursor', async () => {
    expect((await s.request('GET', '/api/queries?limit=0', { auth: admin })).body.key).toBe('invalid_limit');
    expect((await s.request('GET', '/api/queries?limit=201', { auth: admin })).body.key).toBe(
      'invalid_limit',
    );
    const c = await s.request('GET', '/api/queries?cursor=garbage', { auth: admin });
    expect(c.status).toBe(400);
    expect(c.body.key).toBe('invalid_cursor');
  });
});

describe('idempotency', () => {
  /** A record as the first request with `key` leaves it while in flight, `ageMs` ago. */
  async function insertPendingIdempotencyRecord(key: string, ageMs: number): Promise<void> {
    const owner = (await s.request('GET', '/api/me', { auth: admin })).body.data.id;
    await s.qrun.store.db
      .insertInto('idempotency_keys')
      .values({
        owner: `user:${owner}`,
        key,
        request_hash: 'x'.repeat(64),
        state: 'pending',
        response_status: null,
        response_body: null,
        created_at: new Date(Date.now() - ageMs).toISOString(),
        expires_at: new Date(Date.now() + 3600_000).toISOString(),
      })
      .execute();
  }

  it('replays the first response and starts nothing more', async () => {
    const headers = { 'idempotency-key': 'order-12345-abc' };
    const before = await myQueryCount(s, admin);
    const a = await submit(s, admin, connectionId, { query: 'select 1' }, headers);
    const b = await submit(s, admin, connectionId, { query: 'select 1' }, headers);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(b.body).toEqual(a.body);
    expect(await myQueryCount(s, admin)).toBe(before + 1);
  });

  it('another caller may use the same key independently', async () => {
    const dave = await newUser(s, 'dave@idem.example');
    const headers = { 'idempotency-key': 'shared-key-0001' };
    const a = await submit(s, admin, connectionId, { query: 'select 1' }, headers);
    const b = await submit(s, dave, connectionId, { query: 'select 1' }, headers);
    expect(b.body.data.id).not.toBe(a.body.data.id);
  });

  it('422 when the key is reused with a different query or connection', async () => {
    const headers = { 'idempotency-key': 'reuse-key-0001' };
    await submit(s, admin, connectionId, { query: 'select 1' }, headers);
    const r = await submit(s, admin, connectionId, { query: 'select 2' }, headers);
    expect(r.status).toBe(422);
    expect(r.body.key).toBe('idempotency_mismatch');
  });

  it('409 while the first request is still being handled', async () => {
    await insertPendingIdempotencyRecord('in-flight-0001', 0);
    const r = await submit(
      s,
      admin,
      connectionId,
      { query: 'select 1' },
      { 'idempotency-key': 'in-flight-0001' },
    );
    expect(r.status).toBe(409);
    expect(r.body.key).toBe('idempotency_conflict');
  });

  it('a record left pending by a request that died is taken over after a minute', async () => {
    await insertPendingIdempotencyRecord('abandoned-0001', 120_000);
    const r = await submit(
      s,
      admin,
      connectionId,
      { query: 'select 1' },
      { 'idempotency-key': 'abandoned-0001' },
    );
    expect(r.status).toBe(200);
    const again = await submit(
      s,
      admin,
      connectionId,
      { query: 'select 1' },
      { 'idempotency-key': 'abandoned-0001' },
    );
    expect(again.body).toEqual(r.body);
  });

  it.each(['short', 'has space in it', 'x'.repeat(256), 'bad/char!'])(
    '400 for the malformed key %s',
    async (key) => {
      const before = await myQueryCount(s, admin);
      const r = await submit(s, admin, connectionId, { query: 'select 1' }, { 'idempotency-key': key });
      expect(r.status).toBe(400);
      expect(r.body.key).toBe('invalid_idempotency_key');
      expect(await myQueryCount(s, admin)).toBe(before);
    },
  );

  it('a client error is part of the fixed response', async () => {
    const headers = { 'idempotency-key': 'missing-conn-01' };
    const a = await submit(s, admin, '00000000-0000-4000-8000-000000000000', { query: 'select 1' }, headers);
    const b = await submit(s, admin, '00000000-0000-4000-8000-000000000000', { query: 'select 1' }, headers);
    expect(a.status).toBe(404);
    expect(b.status).toBe(404);
    expect(b.body).toEqual(a.body);
  });
});

describe('cancel', () => {
  it('cancels a running query on the database; canceling again is 409', async () => {
    const marker = `qrun_cancel_${Date.now()}`;
    const r = await submit(s, admin, connectionId, { query: `select pg_sleep(60) /* ${marker} */` });
    const id = r.body.data.id;
    await waitRunning(s, admin, id);
    const c = await s.request('POST', `/api/queries/${id}/cancel`, { auth: admin });
    expect(c.status).toBe(200);
    const canceled = { code: 'canceled', sqlstate: null, retryable: false, position: null };
    expect(c.body.data).toEqual({ id, status: 'failed', error: 'canceled', error_details: canceled });
    const g = await s.request('GET', `/api/queries/${id}`, { auth: admin });
    expect(g.body.data).toEqual({ id, status: 'failed', error: 'canceled', error_details: canceled });
    const again = await s.request('POST', `/api/queries/${id}/cancel`, { auth: admin });
    expect(again.status).toBe(409);
    expect(again.body.key).toBe('query_finished');
  });
});

describe('queue limits and waiting tasks', () => {
  let q: TestServer;
  let qAdmin: Auth;
  let qConn: string;
  beforeAll(async () => {
    q = await startTestServer({ QRUN_WORKER_CONCURRENCY: '1', QRUN_MAX_QUEUED: '1' });
    qAdmin = { bearer: q.adminKey };
    qConn = await createConnection(q, qAdmin);
  });
  afterAll(() => q.close());

  it('503 with Retry-After when the backlog is full, creating nothing; a waiting query can be canceled', async () => {
    const running = await submit(q, qAdmin, qConn, { query: 'select pg_sleep(30)' });
    await waitRunning(q, qAdmin, running.body.data.id);
    const waiting = await submit(q, qAdmin, qConn, { query: 'select 1' });
    expect(waiting.status).toBe(200);
    const before = await myQueryCount(q, qAdmin);
    const full = await submit(q, qAdmin, qConn, { query: 'select 2' });
    expect(full.status).toBe(503);
    expect(full.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await myQueryCount(q, qAdmin)).toBe(before);

    const canceled = await q.request('POST', `/api/queries/${waiting.body.data.id}/cancel`, { auth: qAdmin });
    expect(canceled.body.data).toMatchObject({
      status: 'failed',
      error: 'canceled',
      error_details: { code: 'canceled', retryable: false },
    });
    // Canceled before it ran, it still reads failed (its expiry is a result period away, not now).
    const read = await q.request('GET', `/api/queries/${waiting.body.data.id}`, { auth: qAdmin });
    expect(read.status).toBe(200);
    expect(read.body.data).toMatchObject({ status: 'failed', error: 'canceled' });
    const stopped = await q.request('POST', `/api/queries/${running.body.data.id}/cancel`, { auth: qAdmin });
    expect(stopped.body.data.error).toBe('canceled');
    // The canceled waiting query never ran.
    const row = await q.qrun.store.db
      .selectFrom('query_tasks')
      .select(['started_at'])
      .where('id', '=', waiting.body.data.id)
      .executeTakeFirstOrThrow();
    expect(row.started_at).toBeNull();
  });
});

describe('retention', () => {
  let t: TestServer;
  const time = testClock();
  beforeAll(async () => {
    t = await startTestServer(
      { QRUN_RESULT_TTL_SECONDS: '60', QRUN_SWEEP_INTERVAL_SECONDS: '3600' },
      { clock: time.clock },
    );
  });
  afterAll(() => t.close());

  it('done and failed queries answer 404 expired, saying when, once expired (before the sweeper runs); the sweeper deletes the pages', async () => {
    const auth = { bearer: t.adminKey };
    const conn = await createConnection(t, auth);
    const r = await submit(t, auth, conn, { query: 'select 1 as one' });
    const f = await submit(t, auth, conn, { query: 'select 1/0' });
    const done = await waitDone(t, auth, r.body.data.id);
    expect(done.body.data.status).toBe('done');
    const expires: string = done.body.data.expires;
    expect((await waitDone(t, auth, f.body.data.id)).body.data.status).toBe('failed');
    const failedExpires: string = (await t.request('GET', '/api/queries', { auth })).body.data.find(
      (q: { id: string }) => q.id === f.body.data.id,
    ).expires;
    expect(await t.pagesExist(r.body.data.id)).toBe(true);
    // The result is kept 60 s: move the services' and the sweeper's clock past that instead of waiting.
    time.advance(61_000);
    const expired = await t.request('GET', `/api/queries/${r.body.data.id}`, { auth });
    expect(expired.status).toBe(404);
    expect(expired.body).toMatchObject({ status: 404, key: 'expired', metadata: { expires } });
    expect(expired.body.message).toBe(
      `The result of this query expired at ${expires} and was deleted; run the query again.`,
    );
    // A failed query too: whatever it was, a query past its expires is gone.
    const failed = await t.request('GET', `/api/queries/${f.body.data.id}`, { auth });
    expect(failed.status).toBe(404);
    expect(failed.body).toMatchObject({ key: 'expired', metadata: { expires: failedExpires } });
    expect(await t.pagesExist(r.body.data.id)).toBe(true);
    await t.qrun.sweeper.sweepOnce();
    expect(await t.pagesExist(r.body.data.id)).toBe(false);
    const after = await t.request('GET', `/api/queries/${r.body.data.id}`, { auth });
    expect(after.status).toBe(404);
    expect(after.body.key).toBe('expired');
    // Still listed as it ended: done, with when it expired.
    const list = await t.request('GET', '/api/queries', { auth });
    expect(list.body.data.find((q: { id: string }) => q.id === r.body.data.id)).toMatchObject({
      status: 'done',
      expires,
    });
  });
});

describe('progress and queue position', () => {
  let p: TestServer;
  let pAdmin: Auth;
  let pConn: string;
  beforeAll(async () => {
    // One query at a time, pages of 10 rows.
    p = await startTestServer({ QRUN_WORKER_CONCURRENCY: '1', QRUN_PAGE_ROWS: '10' });
    pAdmin = { bearer: p.adminKey };
    pConn = await createConnection(p, pAdmin);
  });
  afterAll(() => p.close());

  const read = async (id: string) =>
    (await p.request('GET', `/api/queries/${id}`, { auth: pAdmin })).body.data;

  it('a running query shows progress that grows, page by page', async () => {
    // 20 rows a second: a page of 10 every half second.
    const r = await submit(p, pAdmin, pConn, {
      query: 'select n, pg_sleep(0.05) from generate_series(1, 200) n',
    });
    const id: string = r.body.data.id;
    const first = await waitUntil('a first page to be stored', async () => {
      const d = await read(id);
      if (d.status !== 'running' && d.status !== 'created') throw new Error(`ended ${d.status}`);
      return d.progress?.pages > 0 ? d.progress : undefined;
    });
    expect(first.rows).toBe(first.pages * 10);
    expect(first.bytes).toBeGreaterThan(0);
    // How long it has run is for people to read; its value is timing, so only its form is checked here.
    expect(Number.isSafeInteger(first.elapsed_ms)).toBe(true);
    const later = await waitUntil('more pages to be stored', async () => {
      const d = await read(id);
      return d.progress?.pages > first.pages ? d.progress : undefined;
    });
    expect(later.rows).toBeGreaterThan(first.rows);
    expect(later.bytes).toBeGreaterThan(first.bytes);
    await p.request('POST', `/api/queries/${id}/cancel`, { auth: pAdmin });
    const ended = await waitDone(p, pAdmin, id);
    expect(ended.body.data).not.toHaveProperty('progress');
  });

  it("a waiting query shows how many of its organization's queries wait before it", async () => {
    const blocking = (await submit(p, pAdmin, pConn, { query: 'select pg_sleep(60)' })).body.data.id;
    await waitRunning(p, pAdmin, blocking);
    const waiting: string[] = [];
    for (let i = 0; i < 3; i++)
      waiting.push((await submit(p, pAdmin, pConn, { query: `select ${i} as i` })).body.data.id);
    expect(await Promise.all(waiting.map(read))).toEqual(
      waiting.map((id, i) => ({ id, status: 'created', queue_position: i })),
    );
    // Another organization's queries are not counted.
    const partner = { bearer: p.partnerKey };
    const org = await p.request('POST', '/api/organizations', {
      auth: partner,
      body: { name: 'queued-too' },
    });
    const user = await p.request('POST', `/api/organizations/${org.body.data.id}/users`, {
      auth: partner,
      body: { email: 'q@queued.example', role: 'admin' },
    });
    const key = await p.request(
      'POST',
      `/api/organizations/${org.body.data.id}/users/${user.body.data.id}/keys`,
      {
        auth: partner,
      },
    );
    const other = { bearer: key.body.data.value as string };
    const otherConn = await createConnection(p, other);
    const theirs = (await submit(p, other, otherConn, { query: 'select 1' })).body.data.id;
    expect((await p.request('GET', `/api/queries/${theirs}`, { auth: other })).body.data).toEqual({
      id: theirs,
      status: 'created',
      queue_position: 0,
    });
    // The first waiting one canceled: the others move up.
    await p.request('POST', `/api/queries/${waiting[0]}/cancel`, { auth: pAdmin });
    expect((await read(waiting[1]!)).queue_position).toBe(0);
    expect((await read(waiting[2]!)).queue_position).toBe(1);

    await p.request('POST', `/api/queries/${blocking}/cancel`, { auth: pAdmin });
    for (const id of waiting.slice(1)) expect((await waitDone(p, pAdmin, id)).body.data.status).toBe('done');
    expect((await waitDone(p, other, theirs)).body.data.status).toBe('done');
  });
});
