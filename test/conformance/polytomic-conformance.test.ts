import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testClock } from '../helpers/clock.js';
import { startTestServer, type Auth, type Response, type TestServer } from '../helpers/server.js';
import { waitForQueryEnd, waitUntil } from '../helpers/wait.js';
import { conforms, propertiesOf, SCHEMA_NAMES } from './polytomic-schemas.js';

/**
 * Every response of the query-runner, connection and identity endpoints, checked against Polytomic's
 * published models (test/conformance/schemas/): no JSON value of a wrong type, and every field qrun
 * promises for that endpoint and status present. Real HTTP, on the deployment under test.
 */

const PAGE_ROWS = 100;
const SERIES = 250;
const pgConfig = { hostname: '127.0.0.1', port: 5432, database: 'test', username: 'postgres' };
/** Polytomic's field names for MySQL; MariaDB's root has an empty password. */
const mysqlConfig = {
  hostname: '127.0.0.1',
  port: 3306,
  dbname: 'test',
  account: 'root',
  passwd: '',
  ssl: false,
};

/** Every field of ConnectionResponseSchema / CreateConnectionResponseSchema, always sent by qrun. */
const CONNECTION_FIELDS = propertiesOf('ConnectionResponseSchema');
const CREATED_FIELDS = propertiesOf('CreateConnectionResponseSchema');
/** Sent with a value, never null. */
const CONNECTION_FILLED = [
  'configuration',
  'created_at',
  'id',
  'name',
  'organization_id',
  'policies',
  'saved',
  'status',
  'type',
  'updated_at',
  'api_calls_last_24_hours',
];

let s: TestServer;
let orgKey: Auth;
const user = (): Auth => ({ bearer: s.adminKey });
const connections: Record<'postgresql' | 'mysql', string> = { postgresql: '', mysql: '' };

/** An error response: Polytomic's ApiError with its four fields, `status` the HTTP status. */
function isApiError(r: Response, status: number, key: string, what: string): void {
  expect(r.status, `${what}: ${r.text}`).toBe(status);
  conforms('ApiError', r.body, what, { filled: ['status', 'message', 'key'] });
  expect(r.body).toMatchObject({ status, key });
}

function connectionConforms(r: Response, schema: 'created' | 'stored', what: string): void {
  expect(r.status, `${what}: ${r.text}`).toBe(200);
  if (schema === 'created') {
    conforms('CreateConnectionResponseEnvelope', r.body, what, {
      at: (b) => b.data,
      present: CREATED_FIELDS,
      filled: CONNECTION_FILLED.filter((f) => CREATED_FIELDS.includes(f)),
    });
  } else {
    conforms('ConnectionResponseEnvelope', r.body, what, {
      at: (b) => b.data,
      present: CONNECTION_FIELDS,
      filled: CONNECTION_FILLED,
    });
  }
  // Both carry all of it, and the type object all of ConnectionTypeSchema.
  expect(Object.keys(r.body.data)).toEqual(
    expect.arrayContaining([...CONNECTION_FIELDS, 'healthcheck_interval']),
  );
  conforms('ConnectionTypeSchema', r.body.data.type, `${what}: type`, {
    present: propertiesOf('ConnectionTypeSchema'),
    filled: ['id', 'name', 'operations'],
  });
}

/** A query response: RunQueryResult in its envelope, with the fields its status promises. */
function queryConforms(r: Response, what: string, envelope = 'QueryResultsEnvelope'): void {
  expect(r.status, `${what}: ${r.text}`).toBe(200);
  const status = r.body?.data?.status as string;
  const filled = ['id', 'status'];
  if (status === 'done') filled.push('fields', 'count', 'expires', 'results');
  if (status === 'failed') filled.push('error');
  conforms(envelope, r.body, `${what} (${status})`, { at: (b) => b.data, filled });
  if (status === 'done') {
    conforms(envelope, r.body, `${what}: links`, { at: (b) => b.links, present: ['next', 'previous'] });
  } else {
    // Until a query is done there are no rows: no fields, count, results or links.
    for (const f of ['fields', 'count', 'results']) expect(r.body.data, what).not.toHaveProperty(f);
    expect(r.body, what).not.toHaveProperty('links');
  }
}

async function submit(connectionId: string, sql: string, auth: Auth = user()): Promise<string> {
  const r = await s.request('POST', `/api/connections/${connectionId}/query`, { auth, body: { query: sql } });
  queryConforms(r, `run query ${sql}`, 'RunQueryEnvelope');
  expect(r.body.data.status).toBe('created');
  return r.body.data.id as string;
}

beforeAll(async () => {
  s = await startTestServer({ QRUN_PAGE_ROWS: String(PAGE_ROWS) });
  const me = await s.request('GET', '/api/me', { auth: user() });
  const key = await s.request('POST', `/api/organizations/${me.body.data.organization_id}/keys`, {
    auth: user(),
  });
  orgKey = { basic: key.body.data.value as string };
  for (const [type, configuration] of [
    ['postgresql', pgConfig],
    ['mysql', mysqlConfig],
  ] as const) {
    const r = await s.request('POST', '/api/connections', {
      auth: user(),
      body: { name: `conformance ${type}`, type, configuration },
    });
    expect(r.status, r.text).toBe(200);
    connections[type] = r.body.data.id;
  }
});

afterAll(async () => {
  await s?.close();
});

describe("Polytomic's schemas", () => {
  it('are all here, each naming where it was transcribed from', async () => {
    const { schemaOf } = await import('./polytomic-schemas.js');
    expect(SCHEMA_NAMES).toEqual(
      expect.arrayContaining([
        'RunQueryEnvelope',
        'QueryResultsEnvelope',
        'RunQueryResult',
        'RunQueryPagination',
        'WorkTaskStatus',
        'ConnectionResponseSchema',
        'CreateConnectionResponseSchema',
        'ConnectionTypeSchema',
        'GetIdentityResponseSchema',
        'ApiError',
      ]),
    );
    for (const name of SCHEMA_NAMES) {
      expect(schemaOf(name).$comment, name).toMatch(
        /^Transcribed from polytomic\/polytomic-typescript src\/api\/types\/\w+\.ts at commit [0-9a-f]{40}/,
      );
    }
    expect(schemaOf('WorkTaskStatus').enum).toEqual(['created', 'running', 'done', 'failed']);
  });

  it('catch a fifth status, a wrong JSON type and a missing field', () => {
    const done = { id: 'x', status: 'done', fields: ['a'], count: 1, expires: 'e', results: [{ a: 1 }] };
    const check = (data: Record<string, unknown>) => () =>
      conforms('QueryResultsEnvelope', { data, links: { next: null, previous: null } }, 'a made-up body', {
        at: (b) => b.data,
        filled: ['id', 'status', 'fields', 'count', 'expires', 'results'],
      });
    expect(check(done)).not.toThrow();
    expect(check({ ...done, status: 'unknown' })).toThrow(/must be equal to one of the allowed values/);
    expect(check({ ...done, count: '1' })).toThrow(/count must be integer,null/);
    expect(check({ ...done, results: [[1]] })).toThrow(/results\/0 must be object/);
    const { expires: _expires, ...withoutExpires } = done;
    expect(check(withoutExpires)).toThrow(/missing or null/);
    expect(() =>
      conforms('ConnectionResponseSchema', { created_at: '2026-01-01 10:00' }, 'a made-up connection'),
    ).toThrow(/created_at must match format "date-time"/);
  });
});

describe('identity', () => {
  it('GET /api/me answers GetIdentityResponseSchema for a user, the organization key and the partner key', async () => {
    const flags = ['is_user', 'is_organization', 'is_partner', 'is_system'];
    const asUser = await s.request('GET', '/api/me', { auth: user() });
    conforms('GetIdentityResponseEnvelope', asUser.body, 'me (user)', {
      at: (b) => b.data,
      filled: propertiesOf('GetIdentityResponseSchema'),
    });
    const asOrganization = await s.request('GET', '/api/me', { auth: orgKey });
    conforms('GetIdentityResponseEnvelope', asOrganization.body, 'me (organization key)', {
      at: (b) => b.data,
      filled: ['organization_id', 'organization_name', ...flags],
    });
    const asPartner = await s.request('GET', '/api/me', { auth: { bearer: s.partnerKey } });
    conforms('GetIdentityResponseEnvelope', asPartner.body, 'me (partner key)', {
      at: (b) => b.data,
      filled: flags,
      present: ['organization_id', 'organization_name'],
    });
    for (const r of [asUser, asOrganization, asPartner]) expect(r.body.data.is_system).toBe(false);
    isApiError(await s.request('GET', '/api/me'), 401, 'unauthorized', 'me without a key');
  });
});

describe('connections', () => {
  it('GET /api/connection_types answers ConnectionType, capabilities and all', async () => {
    const r = await s.request('GET', '/api/connection_types', { auth: user() });
    expect(r.status).toBe(200);
    conforms('ConnectionTypeResponseEnvelope', r.body, 'connection types', { filled: ['data'] });
    for (const type of r.body.data) {
      conforms('ConnectionType', type, `connection type ${type.id}`, {
        filled: ['capabilities', 'id', 'name', 'use_oauth', 'configurationForm'],
        present: ['logo_url'],
      });
    }
  });

  it('create, list, get and update answer CreateConnectionResponseSchema and ConnectionResponseSchema', async () => {
    for (const [type, configuration] of [
      ['postgresql', pgConfig],
      ['mysql', mysqlConfig],
    ] as const) {
      for (const auth of [user(), orgKey]) {
        const created = await s.request('POST', '/api/connections', {
          auth,
          body: {
            name: `${type} ${Object.keys(auth)[0]}`,
            type,
            configuration,
            healthcheck_interval: '3h30m',
          },
        });
        connectionConforms(created, 'created', `create ${type}`);
        expect(created.body.data).toMatchObject({ saved: true, healthcheck_interval: '3h30m' });
        const id = created.body.data.id;
        connectionConforms(
          await s.request('GET', `/api/connections/${id}`, { auth }),
          'stored',
          `get ${type}`,
        );
        const updated = await s.request('PUT', `/api/connections/${id}`, {
          auth,
          body: {
            name: `${type} renamed ${Object.keys(auth)[0]}`,
            configuration: created.body.data.configuration,
          },
        });
        connectionConforms(updated, 'created', `update ${type}`);
      }
    }
    const list = await s.request('GET', '/api/connections', { auth: user() });
    expect(list.status).toBe(200);
    conforms('ConnectionListResponseEnvelope', list.body, 'list', { filled: ['data'] });
    expect(list.body.data.length).toBeGreaterThanOrEqual(6);
    for (const c of list.body.data) {
      connectionConforms({ ...list, body: { data: c } }, 'stored', `list item ${c.name}`);
    }
  });

  it('errors of the connection endpoints are ApiError', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    isApiError(
      await s.request('GET', `/api/connections/${missing}`, { auth: user() }),
      404,
      'not_found',
      'get unknown',
    );
    isApiError(
      await s.request('GET', '/api/connections/nope', { auth: user() }),
      400,
      'invalid_id',
      'bad id',
    );
    isApiError(
      await s.request('POST', '/api/connections', {
        auth: user(),
        body: { name: 'x', type: 'mysql', configuration: { ...mysqlConfig, username: 'root' } },
      }),
      400,
      'invalid_configuration',
      'both spellings of one field',
    );
    isApiError(
      await s.request('POST', '/api/connections', {
        auth: user(),
        body: { name: 'x', type: 'mysql', configuration: { ...mysqlConfig, passwd: 'wrong' } },
      }),
      400,
      'connection_invalid',
      'wrong password',
    );
    isApiError(
      await s.request('DELETE', `/api/connections/${missing}`, { auth: user() }),
      404,
      'not_found',
      'delete unknown',
    );
  });
});

describe('query runner', () => {
  it.each(['postgresql', 'mysql'] as const)(
    '%s: run query, then every page through links.next, answers RunQueryEnvelope and QueryResultsEnvelope',
    async (type) => {
      const sql =
        type === 'postgresql'
          ? `select n, md5(n::text) as hash from generate_series(1, ${SERIES}) n order by n`
          : `SELECT seq AS n, MD5(seq) AS hash FROM seq_1_to_${SERIES} ORDER BY seq`;
      const id = await submit(connections[type], sql);
      const first = await waitForQueryEnd(s, user(), id);
      queryConforms(first, 'first page');
      expect(first.body.data).toMatchObject({ status: 'done', count: SERIES, fields: ['n', 'hash'] });
      let page = first;
      let rows = 0;
      for (let n = 0; ; n++) {
        queryConforms(page, `page ${n}`);
        rows += page.body.data.results.length;
        const next = page.body.links.next as string | null;
        if (!next) break;
        page = await s.request('GET', next, { auth: user() });
      }
      expect(rows).toBe(SERIES);
      // Back from the last page.
      const previous = page.body.links.previous as string;
      queryConforms(await s.request('GET', previous, { auth: user() }), 'previous page');
    },
  );

  it('the SQL in ?query= with an empty body, as the SDKs send it', async () => {
    const r = await s.request(
      'POST',
      `/api/connections/${connections.postgresql}/query?query=${encodeURIComponent('select 1 as one')}`,
      {
        auth: user(),
        body: {},
      },
    );
    queryConforms(r, 'run query (URL parameter)', 'RunQueryEnvelope');
    queryConforms(await waitForQueryEnd(s, user(), r.body.data.id), 'its result');
  });

  it('running, canceled, failed and lost queries answer RunQueryResult with their status', async () => {
    // Running: read while it runs, then canceled on the database.
    const slow = await submit(connections.postgresql, 'select pg_sleep(60)');
    const running = await waitUntil('the query to run', async () => {
      const r = await s.request('GET', `/api/queries/${slow}`, { auth: user() });
      return r.body?.data?.status === 'running' ? r : undefined;
    });
    queryConforms(running, 'running');
    const cancel = await s.request('POST', `/api/queries/${slow}/cancel`, { auth: user() });
    queryConforms(cancel, 'cancel', 'RunQueryEnvelope');
    const canceled = await waitForQueryEnd(s, user(), slow);
    queryConforms(canceled, 'canceled');
    expect(canceled.body.data.status).toBe('failed');

    // A database error.
    for (const type of ['postgresql', 'mysql'] as const) {
      const bad = await submit(connections[type], 'select * from no_such_table_qrun');
      const failed = await waitForQueryEnd(s, user(), bad);
      queryConforms(failed, `${type} error`);
      expect(failed.body.data.status).toBe('failed');
    }

    // Lost with its worker: Polytomic's four statuses, never a fifth.
    const lost = await submit(connections.mysql, 'SELECT SLEEP(60)');
    await waitUntil('the query to run', async () => {
      const r = await s.request('GET', `/api/queries/${lost}`, { auth: user() });
      return r.body?.data?.status === 'running';
    });
    await s.qrun.sweeper.recoverAfterRestart();
    const ended = await waitForQueryEnd(s, user(), lost);
    queryConforms(ended, 'lost');
    expect(ended.body.data.status).toBe('failed');
  });

  it('errors of the query endpoints are ApiError', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    isApiError(
      await s.request('GET', `/api/queries/${missing}`, { auth: user() }),
      404,
      'not_found',
      'unknown query',
    );
    isApiError(
      await s.request('POST', `/api/connections/${missing}/query`, {
        auth: user(),
        body: { query: 'select 1' },
      }),
      404,
      'not_found',
      'unknown connection',
    );
    isApiError(
      await s.request('POST', `/api/connections/${connections.postgresql}/query`, { auth: user(), body: {} }),
      400,
      'query_required',
      'no SQL',
    );
    const id = await submit(connections.postgresql, 'select 1');
    await waitForQueryEnd(s, user(), id);
    isApiError(
      await s.request('GET', `/api/queries/${id}?page=forged`, { auth: user() }),
      400,
      'invalid_page_token',
      'forged page token',
    );
    // Another principal: the same 404 as for an id that does not exist.
    isApiError(
      await s.request('GET', `/api/queries/${id}`, { auth: orgKey }),
      404,
      'not_found',
      'not the creator',
    );
  });
});

describe('an expired result', () => {
  const time = testClock();
  let e: TestServer;

  beforeAll(async () => {
    e = await startTestServer({}, { clock: time.clock });
  });
  afterAll(async () => {
    await e?.close();
  });

  it('answers 404 ApiError with key expired', async () => {
    const auth = { bearer: e.adminKey };
    const c = await e.request('POST', '/api/connections', {
      auth,
      body: { name: 'expiring', type: 'postgresql', configuration: pgConfig },
    });
    const q = await e.request('POST', `/api/connections/${c.body.data.id}/query`, {
      auth,
      body: { query: 'select 1 as one' },
    });
    const done = await waitForQueryEnd(e, auth, q.body.data.id);
    queryConforms(done, 'done');
    time.advance(Date.parse(done.body.data.expires) - Date.parse(time.clock()) + 1000);
    await e.qrun.sweeper.sweepOnce();
    const expired = await e.request('GET', `/api/queries/${q.body.data.id}`, { auth });
    isApiError(expired, 404, 'expired', 'expired result');
    expect(expired.body.message).toMatch(/expired/i);
  });
});
