import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionsRepository } from '../../src/store/repositories/connections.js';
import { testClock } from '../helpers/clock.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitForQueryEnd } from '../helpers/wait.js';

let s: TestServer;
const admin = () => ({ bearer: s.adminKey });
const MARIADB_USER = `qrun_api_${process.pid}`;
const MARIADB_PASSWORD = `pw-${process.pid}-SeCrEt`;

const pgConfig = { hostname: '127.0.0.1', port: 5432, database: 'test', username: 'postgres' };
// Polytomic's names for the mysql type.
const myConfig = { hostname: '127.0.0.1', port: 3306, dbname: 'test', account: MARIADB_USER };
/** What every connection answers beside its own fields (Polytomic's ConnectionResponseSchema). */
const OPERATIONS = ['query', 'cancel', 'parameters', 'healthcheck'];

beforeAll(async () => {
  s = await startTestServer();
  const root = await mysql.createConnection({ host: '127.0.0.1', user: 'root' });
  await root.query(`DROP USER IF EXISTS '${MARIADB_USER}'@'%'`);
  await root.query(`CREATE USER '${MARIADB_USER}'@'%' IDENTIFIED BY '${MARIADB_PASSWORD}'`);
  await root.query(`GRANT SELECT ON test.* TO '${MARIADB_USER}'@'%'`);
  await root.end();
});

afterAll(async () => {
  await s.close();
  const root = await mysql.createConnection({ host: '127.0.0.1', user: 'root' });
  await root.query(`DROP USER IF EXISTS '${MARIADB_USER}'@'%'`);
  await root.end();
});

async function connectionCount(): Promise<number> {
  const r = await s.request('GET', '/api/connections', { auth: admin() });
  return r.body.data.length;
}

describe('connection types', () => {
  it('lists the four engines with their fields', async () => {
    const r = await s.request('GET', '/api/connection_types', { auth: admin() });
    expect(r.status).toBe(200);
    const types = Object.fromEntries(r.body.data.map((t: { id: string }) => [t.id, t]));
    expect(Object.keys(types).sort()).toEqual(['duckdb', 'mysql', 'postgresql', 'sqlite']);
    const pgFields = types.postgresql.fields.map((f: { name: string }) => f.name);
    expect(pgFields).toEqual(['hostname', 'port', 'database', 'username', 'password', 'ssl']);
    const myFields = types.mysql.fields.map((f: { name: string }) => f.name);
    expect(myFields).toEqual(['hostname', 'port', 'dbname', 'account', 'passwd', 'ssl']);
    expect(types.mysql.fields.find((f: { name: string }) => f.name === 'passwd')).toMatchObject({
      secret: true,
      description: 'Password of the user. Also accepted as `password`.',
    });
    expect(types.mysql).toMatchObject({ logo_url: null, operations: OPERATIONS });
    expect(types.postgresql.fields.find((f: { name: string }) => f.name === 'password')).toMatchObject({
      secret: true,
      type: 'string',
    });
    expect(types.mysql.fields.find((f: { name: string }) => f.name === 'port').default).toBe(3306);
    expect(types.sqlite.fields.map((f: { name: string }) => f.name)).toEqual(['path', 'read_only']);
    expect(types.duckdb.fields.find((f: { name: string }) => f.name === 'read_only')).toMatchObject({
      type: 'boolean',
      default: true,
    });
  });
});

describe('connections CRUD', () => {
  it('creates a PostgreSQL connection after validating it, and reads it back', async () => {
    const r = await s.request('POST', '/api/connections', {
      auth: admin(),
      body: {
        name: 'warehouse',
        type: 'postgresql',
        configuration: { ...pgConfig, password: 'unused-secret' },
      },
    });
    expect(r.status).toBe(200);
    const c = r.body.data;
    const me = (await s.request('GET', '/api/me', { auth: admin() })).body.data;
    const adminActor = { id: me.id, name: 'admin@localhost', type: 'user' };
    expect(c).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      name: 'warehouse',
      type: { id: 'postgresql', name: 'PostgreSQL', logo_url: null, operations: OPERATIONS },
      configuration: { ...pgConfig, password: '********', ssl: false },
      organization_id: me.organization_id,
      status: 'healthy',
      status_error: null,
      saved: true,
      policies: [],
      healthcheck_interval: null,
      created_at: expect.stringMatching(/Z$/),
      updated_at: c.created_at,
      created_by: adminActor,
      updated_by: adminActor,
      api_calls_last_24_hours: 0,
      parent_connection_id: null,
      auth_code: null,
      auth_url: null,
    });
    expect(r.text).not.toContain('unused-secret');
    const got = await s.request('GET', `/api/connections/${c.id}`, { auth: admin() });
    // GET answers Polytomic's ConnectionResponseSchema: the same, without the OAuth pair of a create.
    const { auth_code: _code, auth_url: _url, ...stored } = c;
    expect(got.body.data).toEqual(stored);
    const list = await s.request('GET', '/api/connections', { auth: admin() });
    expect(list.body.data.map((x: { id: string }) => x.id)).toContain(c.id);
  });

  it('encrypts secrets at rest and keeps them when the placeholder is sent back', async () => {
    const created = await s.request('POST', '/api/connections', {
      auth: admin(),
      body: { name: 'maria', type: 'mysql', configuration: { ...myConfig, passwd: MARIADB_PASSWORD } },
    });
    expect(created.status).toBe(200);
    expect(created.body.data.configuration).toEqual({ ...myConfig, passwd: '********', ssl: false });
    const id = created.body.data.id;
    const row = await s.qrun.store.db
      .selectFrom('connections')
      .select('configuration')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row.configuration).not.toContain(MARIADB_PASSWORD);
    expect(JSON.parse(row.configuration).passwd).toMatch(/^enc:v1:[0-9a-f]{8}:/);

    // Round-trip what GET returned: the placeholder keeps the stored password (validation connects with it).
    const updated = await s.request('PUT', `/api/connections/${id}`, {
      auth: admin(),
      body: { name: 'maria-renamed', configuration: created.body.data.configuration },
    });
    expect(updated.status).toBe(200);
    expect(updated.body.data).toMatchObject({ name: 'maria-renamed', status: 'healthy' });
    const stored = await s.qrun.store.db
      .selectFrom('connections')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    const resolved = s.qrun.resolver.resolve(stored);
    expect(resolved.config.passwd).toBe(MARIADB_PASSWORD);
  });

  it("mysql takes qrun's earlier field names as aliases and answers with Polytomic's", async () => {
    const earlier = { hostname: '127.0.0.1', port: 3306, database: 'test', username: MARIADB_USER };
    const created = await s.request('POST', '/api/connections', {
      auth: admin(),
      body: {
        name: 'maria-aliases',
        type: 'mysql',
        configuration: { ...earlier, password: MARIADB_PASSWORD },
      },
    });
    expect(created.status, created.text).toBe(200);
    expect(created.body.data.configuration).toEqual({ ...myConfig, passwd: '********', ssl: false });
    // Both spellings of one field: 400 naming the two.
    const before = await connectionCount();
    const both = await s.request('POST', '/api/connections', {
      auth: admin(),
      body: {
        name: 'both',
        type: 'mysql',
        configuration: { ...myConfig, username: MARIADB_USER, passwd: MARIADB_PASSWORD },
      },
    });
    expect(both.status).toBe(400);
    expect(both.body).toMatchObject({
      key: 'invalid_configuration',
      message: 'configuration.username names the same field as configuration.account; send only one of them.',
    });
    expect(await connectionCount()).toBe(before);
  });

  it('a mysql connection stored under the earlier names reads, queries and updates under the new ones', async () => {
    // As qrun stored it before Polytomic's names: `database`, `username`, a sealed `password`.
    const me = (await s.request('GET', '/api/me', { auth: admin() })).body.data;
    const id = randomUUID();
    // PostgreSQL's secret field is `password`: sealing with its connector seals that key.
    const sealed = s.qrun.resolver.seal(s.qrun.resolver.connector('postgresql'), {
      hostname: '127.0.0.1',
      port: 3306,
      database: 'test',
      username: MARIADB_USER,
      password: MARIADB_PASSWORD,
      ssl: false,
    });
    expect(sealed.password).toMatch(/^enc:v1:/);
    await s.qrun.store.db
      .insertInto('connections')
      .values({
        id,
        organization_id: me.organization_id,
        name: 'maria-stored-earlier',
        type: 'mysql',
        configuration: JSON.stringify(sealed),
        status: 'healthy',
        status_error: null,
        created_at: '2026-01-01T00:00:00.000Z',
        updated_at: '2026-01-01T00:00:00.000Z',
      })
      .execute();
    const got = await s.request('GET', `/api/connections/${id}`, { auth: admin() });
    expect(got.status).toBe(200);
    expect(got.body.data).toMatchObject({
      configuration: { ...myConfig, passwd: '********', ssl: false },
      // Not recorded before.
      created_by: null,
      updated_by: null,
    });
    // The stored password opens under its new name: a query runs with it.
    const q = await s.request('POST', `/api/connections/${id}/query`, {
      auth: admin(),
      body: { query: 'SELECT CURRENT_USER() AS who' },
    });
    expect(q.status, q.text).toBe(200);
    const done = (await waitForQueryEnd(s, admin(), q.body.data.id)).body.data;
    expect(done.status, JSON.stringify(done)).toBe('done');
    expect(String(done.results[0].who)).toContain(MARIADB_USER);
    // The placeholder keeps it on PUT, and the row is stored under the new names from then on.
    const put = await s.request('PUT', `/api/connections/${id}`, {
      auth: admin(),
      body: { configuration: got.body.data.configuration },
    });
    expect(put.status, put.text).toBe(200);
    expect(put.body.data).toMatchObject({ status: 'healthy', updated_by: { name: 'admin@localhost' } });
    const row = await s.qrun.store.db
      .selectFrom('connections')
      .select('configuration')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(Object.keys(JSON.parse(row.configuration)).sort()).toEqual(
      ['account', 'dbname', 'hostname', 'passwd', 'port', 'ssl'].sort(),
    );
  });

  it('400 connection_invalid with the database message, credentials scrubbed, and nothing saved', async () => {
    const before = await connectionCount();
    const wrong = 'WrOnG-pAsSwOrD-123';
    const r = await s.request('POST', '/api/connections', {
      auth: admin(),
      body: { name: 'bad', type: 'mysql', configuration: { ...myConfig, passwd: wrong } },
    });
    expect(r.status).toBe(400);
    expect(r.body.key).toBe('connection_invalid');
    expect(r.body.message).toMatch(/Access denied/i);
    expect(r.text).not.toContain(wrong);
    expect(await connectionCount()).toBe(before);
  });

  it('validate: false saves without connecting', async () => {
    const r = await s.request('POST', '/api/connections', {
      auth: admin(),
      body: { name: 'later', type: 'postgresql', validate: false, configuration: { ...pgConfig, port: 1 } },
    });
    expect(r.status).toBe(200);
    expect(r.body.data.status).toBe('untested');
  });

  it('POST /api/connections/test checks without saving', async () => {
    const before = await connectionCount();
    const ok = await s.request('POST', '/api/connections/test', {
      auth: admin(),
      body: { type: 'postgresql', configuration: pgConfig },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.data.status).toBe('healthy');
    const bad = await s.request('POST', '/api/connections/test', {
      auth: admin(),
      body: { type: 'postgresql', configuration: { ...pgConfig, database: 'no_such_db_qrun' } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.key).toBe('connection_invalid');
    expect(bad.body.message).toContain('no_such_db_qrun');
    expect(await connectionCount()).toBe(before);
  });

  it('deletes a connection', async () => {
    const c = await s.request('POST', '/api/connections', {
      auth: admin(),
      body: { name: 'tmp', type: 'postgresql', configuration: pgConfig },
    });
    expect((await s.request('DELETE', `/api/connections/${c.body.data.id}`, { auth: admin() })).status).toBe(
      204,
    );
    expect((await s.request('GET', `/api/connections/${c.body.data.id}`, { auth: admin() })).status).toBe(
      404,
    );
    expect((await s.request('DELETE', `/api/connections/${c.body.data.id}`, { auth: admin() })).status).toBe(
      404,
    );
  });

  it('file connections open only files in the organization’s own directory', async () => {
    const me = await s.request('GET', '/api/me', { auth: admin() });
    const orgDir = path.join(s.qrun.config.fileRoot, me.body.data.organization_id);
    mkdirSync(orgDir, { recursive: true, mode: 0o700 });
    const Database = (await import('better-sqlite3')).default;
    new Database(path.join(orgDir, 'local.sqlite')).close();
    const ok = await s.request('POST', '/api/connections', {
      auth: admin(),
      body: { name: 'local', type: 'sqlite', configuration: { path: 'local.sqlite' } },
    });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.data.status).toBe('healthy');
    // Stored and shown as given, read-only by default.
    expect(ok.body.data.configuration).toEqual({ path: 'local.sqlite', read_only: true });
    const read = await s.request('GET', `/api/connections/${ok.body.data.id}`, { auth: admin() });
    expect(read.body.data.configuration).toEqual({ path: 'local.sqlite', read_only: true });

    // Directly under the file root is outside every organization's directory.
    const outside = path.join(s.qrun.config.fileRoot, 'outside.sqlite');
    new Database(outside).close();
    mkdirSync(path.join(orgDir, 'sub'), { recursive: true });
    symlinkSync(outside, path.join(orgDir, 'sub', 'link.sqlite'));
    writeFileSync(path.join(orgDir, 'not-a-db.txt'), 'hello');
    const before = await connectionCount();
    for (const [type, p] of [
      ['sqlite', '../outside.sqlite'],
      ['sqlite', outside],
      ['sqlite', path.join(orgDir, 'local.sqlite')],
      ['sqlite', 'sub/link.sqlite'],
      ['sqlite', '/etc/passwd'],
      ['duckdb', '../outside.duckdb'],
    ] as const) {
      const r = await s.request('POST', '/api/connections', {
        auth: admin(),
        body: { name: 'evil', type, configuration: { path: p } },
      });
      expect(r.status, `${type} ${p}`).toBe(400);
      expect(r.body.key).toBe('invalid_configuration');
      expect(r.body.message).toContain('configuration.path');
      expect(r.text).not.toContain(s.qrun.config.fileRoot);
    }
    const mem = await s.request('POST', '/api/connections', {
      auth: admin(),
      body: { name: 'mem', type: 'duckdb', configuration: { path: ':memory:' } },
    });
    expect(mem.status).toBe(200);
    expect(await connectionCount()).toBe(before + 1);
  });
});

describe('connection bad input', () => {
  const cases: [string, unknown, string, string][] = [
    ['unknown type', { name: 'x', type: 'oracle', configuration: {} }, 'invalid_connection_type', 'oracle'],
    [
      'missing field',
      { name: 'x', type: 'postgresql', configuration: { hostname: 'h', username: 'u' } },
      'invalid_configuration',
      'configuration.database',
    ],
    [
      'ill-typed port',
      { name: 'x', type: 'postgresql', configuration: { ...pgConfig, port: '5432' } },
      'invalid_configuration',
      'configuration.port',
    ],
    [
      'ill-typed ssl',
      { name: 'x', type: 'mysql', configuration: { ...myConfig, ssl: 'yes' } },
      'invalid_configuration',
      'configuration.ssl',
    ],
    [
      'unknown config field',
      { name: 'x', type: 'postgresql', configuration: { ...pgConfig, hots: 'h' } },
      'invalid_configuration',
      'configuration.hots',
    ],
    [
      'unknown top-level field',
      { name: 'x', type: 'postgresql', configuration: pgConfig, extra: 1 },
      'unknown_field',
      'extra',
    ],
    ['missing name', { type: 'postgresql', configuration: pgConfig }, 'invalid_request', 'name'],
    [
      'placeholder without stored secret',
      { name: 'x', type: 'postgresql', configuration: { ...pgConfig, password: '********' } },
      'invalid_configuration',
      'configuration.password',
    ],
  ];
  it.each(cases)('400 for %s, nothing saved', async (_n, body, key, mentions) => {
    const before = await connectionCount();
    const r = await s.request('POST', '/api/connections', { auth: admin(), body });
    expect(r.status).toBe(400);
    expect(r.body.key).toBe(key);
    expect(r.body.message).toContain(mentions);
    expect(await connectionCount()).toBe(before);
  });

  it('a connection of another organization is 404, for every verb', async () => {
    const partner = { bearer: s.partnerKey };
    const org = await s.request('POST', '/api/organizations', { auth: partner, body: { name: 'rival' } });
    const user = await s.request('POST', `/api/organizations/${org.body.data.id}/users`, {
      auth: partner,
      body: { email: 'rival@example.com', role: 'admin' },
    });
    const key = await s.request(
      'POST',
      `/api/organizations/${org.body.data.id}/users/${user.body.data.id}/keys`,
      {
        auth: partner,
      },
    );
    const rival = { bearer: key.body.data.value as string };
    const mine = await s.request('POST', '/api/connections', {
      auth: admin(),
      body: { name: 'mine', type: 'postgresql', configuration: pgConfig },
    });
    const id = mine.body.data.id;
    expect((await s.request('GET', `/api/connections/${id}`, { auth: rival })).status).toBe(404);
    expect(
      (await s.request('PUT', `/api/connections/${id}`, { auth: rival, body: { name: 'stolen' } })).status,
    ).toBe(404);
    expect((await s.request('DELETE', `/api/connections/${id}`, { auth: rival })).status).toBe(404);
    expect((await s.request('GET', '/api/connections', { auth: rival })).body.data).toEqual([]);
    expect((await s.request('GET', `/api/connections/${id}`, { auth: admin() })).body.data.name).toBe('mine');
  });

  it('the partner key may not use connections', async () => {
    const r = await s.request('GET', '/api/connections', { auth: { bearer: s.partnerKey } });
    expect(r.status).toBe(403);
  });

  it('400 invalid_id for a malformed connection id', async () => {
    const r = await s.request('GET', '/api/connections/123', { auth: admin() });
    expect(r.status).toBe(400);
    expect(r.body.key).toBe('invalid_id');
  });

  it('a type cannot change on update', async () => {
    const c = await s.request('POST', '/api/connections', {
      auth: admin(),
      body: { name: 'typed', type: 'postgresql', configuration: pgConfig },
    });
    const r = await s.request('PUT', `/api/connections/${c.body.data.id}`, {
      auth: admin(),
      body: { type: 'mysql' },
    });
    expect(r.status).toBe(400);
    expect(r.body.key).toBe('invalid_connection_type');
  });
});

describe("every field of Polytomic's connection schemas", () => {
  const create = (auth: { bearer?: string; basic?: string }, body: Record<string, unknown>) =>
    s.request('POST', '/api/connections', {
      auth,
      body: { type: 'postgresql', configuration: pgConfig, ...body },
    });

  it('created_by and updated_by name the user or the organization key that made the change', async () => {
    const me = (await s.request('GET', '/api/me', { auth: admin() })).body.data;
    const key = await s.request('POST', `/api/organizations/${me.organization_id}/keys`, { auth: admin() });
    const orgKey = { basic: key.body.data.value as string };
    const created = await create(orgKey, { name: 'by-the-key' });
    expect(created.status, created.text).toBe(200);
    const organization = { id: me.organization_id, name: 'default', type: 'organization' };
    expect(created.body.data).toMatchObject({ created_by: organization, updated_by: organization });
    const renamed = await s.request('PUT', `/api/connections/${created.body.data.id}`, {
      auth: admin(),
      body: { name: 'by-the-key, renamed' },
    });
    expect(renamed.body.data).toMatchObject({
      created_by: organization,
      updated_by: { id: me.id, name: 'admin@localhost', type: 'user' },
    });
    const got = await s.request('GET', `/api/connections/${created.body.data.id}`, { auth: orgKey });
    expect(got.body.data.updated_by).toEqual(renamed.body.data.updated_by);
  });

  it("api_calls_last_24_hours counts the connection's queries of the last 24 hours, by anyone", async () => {
    const me = (await s.request('GET', '/api/me', { auth: admin() })).body.data;
    const key = await s.request('POST', `/api/organizations/${me.organization_id}/keys`, { auth: admin() });
    const orgKey = { basic: key.body.data.value as string };
    const counted = (await create(admin(), { name: 'counted' })).body.data.id as string;
    const other = (await create(admin(), { name: 'not counted' })).body.data.id as string;
    const ids: string[] = [];
    for (const auth of [admin(), admin(), orgKey]) {
      const q = await s.request('POST', `/api/connections/${counted}/query`, {
        auth,
        body: { query: 'select 1' },
      });
      expect(q.status, q.text).toBe(200);
      ids.push(q.body.data.id);
    }
    const calls = async () => {
      const list = (await s.request('GET', '/api/connections', { auth: admin() })).body.data;
      const byId = new Map(list.map((c: { id: string; api_calls_last_24_hours: number }) => [c.id, c]));
      const one = (await s.request('GET', `/api/connections/${counted}`, { auth: admin() })).body.data;
      expect((byId.get(counted) as { api_calls_last_24_hours: number }).api_calls_last_24_hours).toBe(
        one.api_calls_last_24_hours,
      );
      return [
        one.api_calls_last_24_hours,
        (byId.get(other) as { api_calls_last_24_hours: number }).api_calls_last_24_hours,
      ];
    };
    expect(await calls()).toEqual([3, 0]);
    // A query of 25 hours ago no longer counts.
    await s.qrun.store.db
      .updateTable('query_tasks')
      .set({ created_at: new Date(Date.now() - 25 * 3_600_000).toISOString() })
      .where('id', '=', ids[0]!)
      .execute();
    expect(await calls()).toEqual([2, 0]);
  });

  it("healthcheck_interval is taken in Go's duration form, answered in its shortest, and null turns it off", async () => {
    const created = await create(admin(), { name: 'checked', healthcheck_interval: '90m' });
    expect(created.status, created.text).toBe(200);
    expect(created.body.data.healthcheck_interval).toBe('1h30m');
    const id = created.body.data.id;
    for (const [given, answered] of [
      ['3h30m', '3h30m'],
      ['1.5h', '1h30m'],
      ['3600s', '1h'],
      ['720h', '720h'],
      [null, null],
      ['', null],
    ] as const) {
      const r = await s.request('PUT', `/api/connections/${id}`, {
        auth: admin(),
        body: { healthcheck_interval: given },
      });
      expect(r.status, r.text).toBe(200);
      expect(r.body.data.healthcheck_interval).toBe(answered);
      expect(
        (await s.request('GET', `/api/connections/${id}`, { auth: admin() })).body.data.healthcheck_interval,
      ).toBe(answered);
    }
    // Absent: unchanged.
    await s.request('PUT', `/api/connections/${id}`, { auth: admin(), body: { healthcheck_interval: '2h' } });
    const renamed = await s.request('PUT', `/api/connections/${id}`, {
      auth: admin(),
      body: { name: 'checked!' },
    });
    expect(renamed.body.data.healthcheck_interval).toBe('2h');
    const before = await connectionCount();
    for (const bad of ['5', '30s', '721h', '-1h', '1d', 'soon', '1h 30m', '59.5s']) {
      const r = await create(admin(), { name: 'bad interval', healthcheck_interval: bad });
      expect(r.status, bad).toBe(400);
      expect(r.body).toMatchObject({
        key: 'invalid_healthcheck_interval',
        metadata: { field: 'healthcheck_interval' },
      });
      expect(r.body.message).toContain(`"${bad}"`);
    }
    expect(await connectionCount()).toBe(before);
  });
});

describe('periodic connection checks', () => {
  const time = testClock();
  let server: TestServer;
  const ROLE = `qrun_hc_${process.pid}`;
  const superuser = () =>
    new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' });
  async function asSuperuser(sql: string): Promise<void> {
    const c = superuser();
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  }
  const auth = () => ({ bearer: server.adminKey });
  const read = async (id: string) =>
    (await server.request('GET', `/api/connections/${id}`, { auth: auth() })).body.data;
  /** One sweep as every process runs it, and the checks it started, to their end. */
  async function sweep(): Promise<void> {
    await server.qrun.sweeper.sweepOnce();
    await server.qrun.connectionChecks.idle();
  }

  beforeAll(async () => {
    server = await startTestServer({}, { clock: time.clock });
    await asSuperuser(`DROP ROLE IF EXISTS ${ROLE}`);
    await asSuperuser(`CREATE ROLE ${ROLE} LOGIN`);
  });

  afterAll(async () => {
    await server?.close();
    await asSuperuser(`DROP ROLE IF EXISTS ${ROLE}`);
  });

  it('a due check records status and status_error, and the next is one interval later', async () => {
    const created = await server.request('POST', '/api/connections', {
      auth: auth(),
      body: {
        name: 'watched',
        type: 'postgresql',
        configuration: { ...pgConfig, username: ROLE },
        healthcheck_interval: '5m',
      },
    });
    expect(created.status, created.text).toBe(200);
    const id = created.body.data.id;
    expect(created.body.data).toMatchObject({ status: 'healthy', status_error: null });

    await asSuperuser(`ALTER ROLE ${ROLE} NOLOGIN`);
    time.advance(4 * 60_000);
    await sweep();
    // Not due yet: nothing checked it.
    expect(await read(id)).toMatchObject({ status: 'healthy', status_error: null });

    time.advance(2 * 60_000);
    await sweep();
    const failed = await read(id);
    expect(failed.status).toBe('unhealthy');
    expect(failed.status_error).toContain('not permitted to log in');

    await asSuperuser(`ALTER ROLE ${ROLE} LOGIN`);
    await sweep();
    // Checked 0 minutes ago: the next check is 5 minutes after the last.
    expect((await read(id)).status).toBe('unhealthy');
    time.advance(5 * 60_000);
    await sweep();
    expect(await read(id)).toMatchObject({ status: 'healthy', status_error: null });

    // Without an interval nothing is checked any more.
    await server.request('PUT', `/api/connections/${id}`, {
      auth: auth(),
      body: { healthcheck_interval: null },
    });
    await asSuperuser(`ALTER ROLE ${ROLE} NOLOGIN`);
    time.advance(60 * 60_000);
    await sweep();
    expect(await read(id)).toMatchObject({
      status: 'healthy',
      status_error: null,
      healthcheck_interval: null,
    });
    await asSuperuser(`ALTER ROLE ${ROLE} LOGIN`);
  });

  it('a check that cannot reach its database records why', async () => {
    const created = await server.request('POST', '/api/connections', {
      auth: auth(),
      body: {
        name: 'unreachable',
        type: 'postgresql',
        validate: false,
        configuration: { ...pgConfig, port: 1 },
        healthcheck_interval: '1m',
      },
    });
    expect(created.body.data.status).toBe('untested');
    time.advance(60_000);
    await sweep();
    expect(await read(created.body.data.id)).toMatchObject({
      status: 'unhealthy',
      status_error: 'Could not reach 127.0.0.1:1: no database answered there.',
    });
  });

  it('one check at a time per connection, whichever processes ask', async () => {
    const created = await server.request('POST', '/api/connections', {
      auth: auth(),
      body: { name: 'claimed', type: 'postgresql', configuration: pgConfig, healthcheck_interval: '1h' },
    });
    const id = created.body.data.id as string;
    // Due in a day (by the server's clock); the claims below ask two days from now, so the server's own
    // sweeps never take part.
    const at = (days: number) => new Date(Date.parse(time.clock()) + days * 86_400_000).toISOString();
    await server.qrun.store.db
      .updateTable('connections')
      .set({ healthcheck_due_at: at(1) })
      .where('id', '=', id)
      .execute();
    // A second process: its own pool on the same metadata store.
    const { openMetadataStore } = await import('../../src/store/database.js');
    const other = openMetadataStore(server.qrun.config.databaseUrl);
    try {
      const repos = [new ConnectionsRepository(server.qrun.store.db), new ConnectionsRepository(other.db)];
      const now = at(2);
      const until = at(2.001);
      const claims = await Promise.all([...repos, ...repos].map((r) => r.claimHealthcheck(id, now, until)));
      expect(claims.filter((c) => c !== undefined)).toHaveLength(1);
      expect(await repos[1]!.claimHealthcheck(id, now, until)).toBeUndefined();
      // A claim whose time ran out (its process died) can be taken over.
      expect(await repos[1]!.claimHealthcheck(id, at(2.002), at(2.003))).toBeDefined();
    } finally {
      await other.close();
    }
  });
});
