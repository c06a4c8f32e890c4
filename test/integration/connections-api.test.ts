import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
const admin = () => ({ bearer: s.adminKey });
const MARIADB_USER = `qrun_api_${process.pid}`;
const MARIADB_PASSWORD = `pw-${process.pid}-SeCrEt`;

const pgConfig = { hostname: '127.0.0.1', port: 5432, database: 'test', username: 'postgres' };
const myConfig = { hostname: '127.0.0.1', port: 3306, database: 'test', username: MARIADB_USER };

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
    expect(c).toMatchObject({
      name: 'warehouse',
      type: { id: 'postgresql', name: 'PostgreSQL' },
      status: 'healthy',
      configuration: { ...pgConfig, password: '********', ssl: false },
    });
    expect(r.text).not.toContain('unused-secret');
    const got = await s.request('GET', `/api/connections/${c.id}`, { auth: admin() });
    expect(got.body.data).toEqual(c);
    const list = await s.request('GET', '/api/connections', { auth: admin() });
    expect(list.body.data.map((x: { id: string }) => x.id)).toContain(c.id);
  });

  it('encrypts secrets at rest and keeps them when the placeholder is sent back', async () => {
    const created = await s.request('POST', '/api/connections', {
      auth: admin(),
      body: { name: 'maria', type: 'mysql', configuration: { ...myConfig, password: MARIADB_PASSWORD } },
    });
    expect(created.status).toBe(200);
    const id = created.body.data.id;
    const row = await s.qrun.store.db
      .selectFrom('connections')
      .select('configuration')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row.configuration).not.toContain(MARIADB_PASSWORD);
    expect(JSON.parse(row.configuration).password).toMatch(/^enc:v1:[0-9a-f]{8}:/);

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
    expect(resolved.config.password).toBe(MARIADB_PASSWORD);
  });

  it('400 connection_invalid with the database message, credentials scrubbed, and nothing saved', async () => {
    const before = await connectionCount();
    const wrong = 'WrOnG-pAsSwOrD-123';
    const r = await s.request('POST', '/api/connections', {
      auth: admin(),
      body: { name: 'bad', type: 'mysql', configuration: { ...myConfig, password: wrong } },
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
