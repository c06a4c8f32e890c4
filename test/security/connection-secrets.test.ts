/**
 * Attack: a member of an organization steals a stored connection password by pointing the connection
 * at a server of their own (new port or host, password sent back as the "********" placeholder), which
 * asks for cleartext authentication. Defences: only admins and the organization key change connections
 * (403 forbidden for role `user`), and the placeholder keeps a stored secret only for the same
 * destination (400 secret_required), decided before anything connects.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakePostgres, type FakePostgres } from '../helpers/fake-postgres.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'correct-horse-battery-staple';
const target = { hostname: '127.0.0.1', port: 5432, database: 'test', username: 'postgres' };

let s: TestServer;
let fake: FakePostgres;
let orgId: string;
let member: { bearer: string };
let orgKey: { basic: string };
const admin = () => ({ bearer: s.adminKey });

beforeAll(async () => {
  s = await startTestServer();
  fake = await startFakePostgres();
  orgId = (await s.request('GET', '/api/me', { auth: admin() })).body.data.organization_id;
  const user = await s.request('POST', `/api/organizations/${orgId}/users`, {
    auth: admin(),
    body: { email: 'mallory@example.com', role: 'user' },
  });
  const key = await s.request('POST', `/api/organizations/${orgId}/users/${user.body.data.id}/keys`, {
    auth: admin(),
  });
  member = { bearer: key.body.data.value };
  const organizationKey = await s.request('POST', `/api/organizations/${orgId}/keys`, { auth: admin() });
  orgKey = { basic: organizationKey.body.data.value };
});

afterAll(async () => {
  await fake?.close();
  await s?.close();
});

afterEach(() => {
  // Whatever a test tried, the fake server never heard from qrun.
  expect(fake.connections()).toBe(0);
  expect(fake.passwords()).toEqual([]);
});

/** A connection with the real password stored, created by the admin (PostgreSQL trusts the loopback). */
async function storedConnection(): Promise<{ id: string; before: unknown }> {
  const created = await s.request('POST', '/api/connections', {
    auth: admin(),
    body: {
      name: `wh-${Math.random()}`,
      type: 'postgresql',
      configuration: { ...target, password: PASSWORD },
    },
  });
  expect(created.status).toBe(200);
  const before = (await s.request('GET', `/api/connections/${created.body.data.id}`, { auth: admin() })).body;
  return { id: created.body.data.id, before };
}

async function unchanged(id: string, before: unknown): Promise<void> {
  const after = await s.request('GET', `/api/connections/${id}`, { auth: admin() });
  expect(after.body).toEqual(before);
}

describe('a member of role user', () => {
  it('cannot repoint a connection (403 forbidden), and nothing changes', async () => {
    const { id, before } = await storedConnection();
    const r = await s.request('PUT', `/api/connections/${id}`, {
      auth: member,
      body: { configuration: { ...target, port: fake.port, password: '********' } },
    });
    expect(r.status).toBe(403);
    expect(r.body.key).toBe('forbidden');
    expect(r.body.message).toMatch(/organization admin or the organization key/);
    await unchanged(id, before);
  });

  it('cannot create or delete connections, but may list, read, test and query them', async () => {
    const { id, before } = await storedConnection();
    const create = await s.request('POST', '/api/connections', {
      auth: member,
      body: {
        name: 'mine',
        type: 'postgresql',
        configuration: { ...target, password: 'x' },
        validate: false,
      },
    });
    expect(create.status).toBe(403);
    expect(create.body.key).toBe('forbidden');
    const del = await s.request('DELETE', `/api/connections/${id}`, { auth: member });
    expect(del.status).toBe(403);
    await unchanged(id, before);
    const names = (await s.request('GET', '/api/connections', { auth: admin() })).body.data.map(
      (c: { name: string }) => c.name,
    );
    expect(names).not.toContain('mine');

    expect((await s.request('GET', '/api/connections', { auth: member })).status).toBe(200);
    expect((await s.request('GET', `/api/connections/${id}`, { auth: member })).status).toBe(200);
    const test = await s.request('POST', '/api/connections/test', {
      auth: member,
      body: { type: 'postgresql', configuration: target },
    });
    expect(test.status).toBe(200);
    const query = await s.request('POST', `/api/connections/${id}/query`, {
      auth: member,
      body: { query: 'select 1 as one' },
    });
    expect(query.status).toBe(200);
    expect(query.body.data.status).toBe('created');
  });
});

describe('the placeholder keeps a secret only for the same destination', () => {
  it.each([
    ['port', { port: 0 }],
    ['hostname', { hostname: 'localhost' }],
    ['database', { database: 'postgres' }],
    ['username', { username: 'mallory' }],
    ['ssl', { ssl: true }],
  ])(
    'changing %s with the placeholder is 400 secret_required, decided before any connect',
    async (field, change) => {
      const { id, before } = await storedConnection();
      const configuration = { ...target, ...change, password: '********' };
      if (field === 'port') configuration.port = fake.port;
      for (const auth of [admin(), orgKey]) {
        const r = await s.request('PUT', `/api/connections/${id}`, { auth, body: { configuration } });
        expect(r.status).toBe(400);
        expect(r.body.key).toBe('secret_required');
        expect(r.body.message).toContain('configuration.password must be sent again');
        expect(r.body.message).toContain(field);
        expect(r.body.metadata).toMatchObject({ field: 'configuration.password', changed: [field] });
        expect(r.text).not.toContain(PASSWORD);
      }
      await unchanged(id, before);
    },
  );

  it('an unchanged destination keeps the stored secret (rename, or resend the same target)', async () => {
    const { id } = await storedConnection();
    const r = await s.request('PUT', `/api/connections/${id}`, {
      auth: admin(),
      body: { name: 'renamed', configuration: { ...target, password: '********' } },
    });
    expect(r.status).toBe(200);
    expect(r.body.data.configuration.password).toBe('********');
    // The stored secret is still the original one: sealed, and not the placeholder.
    const stored = s.qrun.resolver.resolve(
      (await s.qrun.store.db.selectFrom('connections').selectAll().where('id', '=', id).executeTakeFirst())!,
    );
    expect(stored.config.password).toBe(PASSWORD);
  });

  it('an admin may repoint a connection when sending a new secret with it', async () => {
    const { id } = await storedConnection();
    // validate: false, so the fake server is not dialled (the afterEach check holds).
    const r = await s.request('PUT', `/api/connections/${id}`, {
      auth: admin(),
      body: { configuration: { ...target, port: fake.port, password: 'a-new-one' }, validate: false },
    });
    expect(r.status).toBe(200);
    expect(r.body.data.configuration.port).toBe(fake.port);
  });
});

describe('the fake server', () => {
  it('really does capture a cleartext password when dialled (so its silence above means something)', async () => {
    const r = await s.request('POST', '/api/connections/test', {
      auth: admin(),
      body: { type: 'postgresql', configuration: { ...target, port: fake.port, password: 'bait' } },
    });
    expect(r.status).toBe(400);
    expect(r.body.key).toBe('connection_invalid');
    expect(fake.passwords()).toEqual(['bait']);
    // Reset for the afterEach check: this test alone was meant to reach it.
    await fake.close();
    fake = await startFakePostgres();
  });
});
