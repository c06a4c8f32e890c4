import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
let orgId: string;

beforeAll(async () => {
  s = await startTestServer();
  const me = await s.request('GET', '/api/me', { auth: { bearer: s.adminKey } });
  orgId = me.body.data.organization_id;
});
afterAll(() => s.close());

describe('authentication', () => {
  it('GET /api/me describes a user key', async () => {
    const r = await s.request('GET', '/api/me', { auth: { bearer: s.adminKey } });
    expect(r.status).toBe(200);
    expect(r.body.data).toMatchObject({
      email: 'admin@localhost',
      organization_name: 'default',
      role: 'admin',
      is_user: true,
      is_organization: false,
      is_partner: false,
      is_system: false,
    });
    expect(r.body.data.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('GET /api/me describes the partner key', async () => {
    const r = await s.request('GET', '/api/me', { auth: { bearer: s.partnerKey } });
    expect(r.status).toBe(200);
    expect(r.body.data).toMatchObject({
      is_partner: true,
      is_user: false,
      is_organization: false,
      is_system: false,
    });
  });

  it.each([
    ['no header', undefined],
    ['garbled bearer', 'Bearer not-a-key'],
    ['well-formed unknown key', `Bearer qrun_u_${'A'.repeat(43)}`],
    ['unknown scheme', 'Token abc'],
    ['empty bearer', 'Bearer '],
    ['garbled basic', 'Basic %%%'],
  ])('401 unauthorized for %s', async (_name, header) => {
    const r = await s.request('GET', '/api/me', { auth: header ? { raw: header } : undefined });
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ status: 401, key: 'unauthorized' });
    expect(r.body.message).toMatch(/key/i);
  });

  it('accepts X-Polytomic-Version', async () => {
    const r = await s.request('GET', '/api/me', {
      auth: { bearer: s.adminKey },
      headers: { 'x-polytomic-version': '2025-09-18' },
    });
    expect(r.status).toBe(200);
  });

  it('organization keys authenticate as Basic with the key as user name, not as Bearer', async () => {
    const created = await s.request('POST', `/api/organizations/${orgId}/keys`, {
      auth: { bearer: s.adminKey },
    });
    expect(created.status).toBe(200);
    const key = created.body.data.value as string;
    expect(key).toMatch(/^qrun_o_/);
    const me = await s.request('GET', '/api/me', { auth: { basic: key } });
    expect(me.status).toBe(200);
    expect(me.body.data).toMatchObject({
      organization_id: orgId,
      is_organization: true,
      is_user: false,
      is_system: false,
    });
    // Password part is ignored.
    const withPassword = await s.request('GET', '/api/me', {
      auth: { raw: `Basic ${Buffer.from(`${key}:whatever`).toString('base64')}` },
    });
    expect(withPassword.status).toBe(200);
    const asBearer = await s.request('GET', '/api/me', { auth: { bearer: key } });
    expect(asBearer.status).toBe(401);
  });
});

describe('organizations (partner only)', () => {
  it('creates, reads, renames, lists and deletes an organization', async () => {
    const auth = { bearer: s.partnerKey };
    const created = await s.request('POST', '/api/organizations', { auth, body: { name: 'acme' } });
    expect(created.status).toBe(200);
    const id = created.body.data.id;
    expect(created.body.data.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    expect((await s.request('GET', `/api/organizations/${id}`, { auth })).body.data.name).toBe('acme');
    const renamed = await s.request('PUT', `/api/organizations/${id}`, { auth, body: { name: 'acme-2' } });
    expect(renamed.body.data.name).toBe('acme-2');
    const list = await s.request('GET', '/api/organizations', { auth });
    expect(list.body.data.map((o: { name: string }) => o.name)).toEqual(
      expect.arrayContaining(['default', 'acme-2']),
    );

    const dup = await s.request('POST', '/api/organizations', { auth, body: { name: 'acme-2' } });
    expect(dup.status).toBe(409);
    expect(dup.body.key).toBe('organization_exists');

    expect((await s.request('DELETE', `/api/organizations/${id}`, { auth })).status).toBe(204);
    expect((await s.request('GET', `/api/organizations/${id}`, { auth })).status).toBe(404);
  });

  it('403 for a user key on partner-only endpoints, and nothing changes', async () => {
    const auth = { bearer: s.adminKey };
    const r = await s.request('POST', '/api/organizations', { auth, body: { name: 'nope' } });
    expect(r.status).toBe(403);
    expect(r.body.key).toBe('forbidden');
    expect((await s.request('GET', '/api/organizations', { auth })).status).toBe(403);
    const list = await s.request('GET', '/api/organizations', { auth: { bearer: s.partnerKey } });
    expect(list.body.data.some((o: { name: string }) => o.name === 'nope')).toBe(false);
  });

  it('400 invalid_id for a malformed id and 404 for an unknown one', async () => {
    const auth = { bearer: s.partnerKey };
    const bad = await s.request('GET', '/api/organizations/not-a-uuid', { auth });
    expect(bad.status).toBe(400);
    expect(bad.body.key).toBe('invalid_id');
    const missing = await s.request('GET', '/api/organizations/00000000-0000-4000-8000-000000000000', {
      auth,
    });
    expect(missing.status).toBe(404);
    expect(missing.body.key).toBe('not_found');
  });

  it('rejects unknown fields and empty names', async () => {
    const auth = { bearer: s.partnerKey };
    const unknown = await s.request('POST', '/api/organizations', {
      auth,
      body: { name: 'x', nmae: 'typo' },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.key).toBe('unknown_field');
    expect(unknown.body.message).toContain('nmae');
    const empty = await s.request('POST', '/api/organizations', { auth, body: { name: '   ' } });
    expect(empty.status).toBe(400);
    const nul = await s.request('POST', '/api/organizations', { auth, body: { name: 'x\u0000y' } });
    expect(nul.status).toBe(400);
    expect(nul.body.message).toContain('NUL');
    const list = await s.request('GET', '/api/organizations', { auth });
    expect(list.body.data.some((o: { name: string }) => o.name === 'x')).toBe(false);
  });
});

describe('users and keys', () => {
  it('an admin manages users of their organization; user keys work and can be revoked', async () => {
    const auth = { bearer: s.adminKey };
    const created = await s.request('POST', `/api/organizations/${orgId}/users`, {
      auth,
      body: { email: 'Bob@Example.com', role: 'user' },
    });
    expect(created.status).toBe(200);
    expect(created.body.data).toMatchObject({
      email: 'bob@example.com',
      role: 'user',
      organization_id: orgId,
    });
    const userId = created.body.data.id;

    const key = await s.request('POST', `/api/organizations/${orgId}/users/${userId}/keys`, { auth });
    expect(key.status).toBe(200);
    expect(key.body.data.value).toMatch(/^qrun_u_[A-Za-z0-9_-]{43}$/);
    const bob = { bearer: key.body.data.value as string };
    expect((await s.request('GET', '/api/me', { auth: bob })).body.data.email).toBe('bob@example.com');

    // Keys are listed by hint, never by value.
    const keys = await s.request('GET', `/api/organizations/${orgId}/users/${userId}/keys`, { auth });
    expect(keys.body.data).toHaveLength(1);
    expect(keys.text).not.toContain(key.body.data.value);

    // A non-admin user may not manage users, and nothing changes.
    const forbidden = await s.request('POST', `/api/organizations/${orgId}/users`, {
      auth: bob,
      body: { email: 'eve@example.com' },
    });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.key).toBe('forbidden');
    expect((await s.request('GET', `/api/organizations/${orgId}/users`, { auth: bob })).status).toBe(403);
    const users = await s.request('GET', `/api/organizations/${orgId}/users`, { auth });
    expect(users.body.data.map((u: { email: string }) => u.email)).not.toContain('eve@example.com');

    const updated = await s.request('PUT', `/api/organizations/${orgId}/users/${userId}`, {
      auth,
      body: { role: 'admin' },
    });
    expect(updated.body.data.role).toBe('admin');

    const revoked = await s.request(
      'DELETE',
      `/api/organizations/${orgId}/users/${userId}/keys/${key.body.data.id}`,
      {
        auth,
      },
    );
    expect(revoked.status).toBe(204);
    expect((await s.request('GET', '/api/me', { auth: bob })).status).toBe(401);

    expect((await s.request('DELETE', `/api/organizations/${orgId}/users/${userId}`, { auth })).status).toBe(
      204,
    );
    expect((await s.request('GET', `/api/organizations/${orgId}/users/${userId}`, { auth })).status).toBe(
      404,
    );
  });

  it('an organization key is revocable', async () => {
    const auth = { bearer: s.adminKey };
    const created = await s.request('POST', `/api/organizations/${orgId}/keys`, { auth });
    const key = created.body.data.value as string;
    expect((await s.request('GET', '/api/me', { auth: { basic: key } })).status).toBe(200);
    const del = await s.request('DELETE', `/api/organizations/${orgId}/keys/${created.body.data.id}`, {
      auth,
    });
    expect(del.status).toBe(204);
    expect((await s.request('GET', '/api/me', { auth: { basic: key } })).status).toBe(401);
  });

  it('the partner manages users of any organization; an admin of another organization gets 404', async () => {
    const partner = { bearer: s.partnerKey };
    const other = await s.request('POST', '/api/organizations', {
      auth: partner,
      body: { name: 'other-org' },
    });
    const otherId = other.body.data.id;
    const user = await s.request('POST', `/api/organizations/${otherId}/users`, {
      auth: partner,
      body: { email: 'carol@other.example', role: 'admin' },
    });
    expect(user.status).toBe(200);
    const r = await s.request('GET', `/api/organizations/${otherId}/users`, { auth: { bearer: s.adminKey } });
    expect(r.status).toBe(404);
  });

  it('rejects bad user input with the field named', async () => {
    const auth = { bearer: s.adminKey };
    const badEmail = await s.request('POST', `/api/organizations/${orgId}/users`, {
      auth,
      body: { email: 'nope' },
    });
    expect(badEmail.status).toBe(400);
    expect(badEmail.body.key).toBe('invalid_email');
    const badRole = await s.request('POST', `/api/organizations/${orgId}/users`, {
      auth,
      body: { email: 'x@example.com', role: 'owner' },
    });
    expect(badRole.status).toBe(400);
    expect(badRole.body.message).toContain('role');
    const dup = await s.request('POST', `/api/organizations/${orgId}/users`, {
      auth,
      body: { email: 'admin@localhost' },
    });
    expect(dup.status).toBe(409);
    const users = await s.request('GET', `/api/organizations/${orgId}/users`, { auth });
    expect(users.body.data.map((u: { email: string }) => u.email)).not.toContain('x@example.com');
  });

  it('stores keys only as hashes', async () => {
    const rows = await s.qrun.store.db.selectFrom('api_keys').select(['key_hash', 'key_hint']).execute();
    for (const row of rows) {
      expect(row.key_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(row.key_hint.length).toBeLessThan(16);
    }
    expect(rows.some((r) => s.adminKey.startsWith(r.key_hint.replace('…', '')))).toBe(true);
  });
});
