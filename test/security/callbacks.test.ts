/**
 * callback_url and the webhook secret, tried as a hostile tenant would, through real HTTP on the deployment
 * under test: qrun's callbacks must not become a way to reach the cloud metadata service or other link-local
 * hosts (server-side request forgery), to leak a secret to someone who may not manage it, or to follow a
 * redirect somewhere the policy never checked. Each refusal creates nothing.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type Auth, type TestServer } from '../helpers/server.js';
import { createPostgresConnection, createTenant } from '../helpers/tenants.js';
import { waitForQueryEnd, waitUntil } from '../helpers/wait.js';
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';

let s: TestServer;
let admin: Auth;
let member: Auth;
let connectionId: string;
let target: WebhookReceiver;

beforeAll(async () => {
  s = await startTestServer();
  const tenant = await createTenant(s, 'hooks');
  admin = tenant.admin;
  const user = await s.request('POST', `/api/organizations/${tenant.organizationId}/users`, {
    auth: admin,
    body: { email: 'member@hooks.example', role: 'user' },
  });
  const key = await s.request(
    'POST',
    `/api/organizations/${tenant.organizationId}/users/${user.body.data.id}/keys`,
    { auth: admin },
  );
  member = { bearer: key.body.data.value };
  connectionId = await createPostgresConnection(s, admin);
  target = await startReceiver();
});
afterAll(async () => {
  await target?.close();
  await s?.close();
});

async function queryCount(auth: Auth): Promise<number> {
  const r = await s.request('GET', '/api/queries?limit=200', { auth });
  expect(r.status).toBe(200);
  return r.body.data.length;
}

function submit(auth: Auth, body: Record<string, unknown>) {
  return s.request('POST', `/api/connections/${connectionId}/query`, { auth, body });
}

describe('the webhook secret', () => {
  it('is created and rotated by organization admins only, and shown only when made', async () => {
    const byMember = await s.request('POST', '/api/webhook_secret', { auth: member });
    expect(byMember.status).toBe(403);
    expect(byMember.body).toMatchObject({ status: 403, key: 'forbidden' });
    const byPartner = await s.request('POST', '/api/webhook_secret', { auth: { bearer: s.partnerKey } });
    expect(byPartner.status).toBe(403);
    expect((await s.request('POST', '/api/webhook_secret')).status).toBe(401);

    const first = await s.request('POST', '/api/webhook_secret', { auth: admin });
    expect(first.status).toBe(200);
    expect(first.body.data.secret).toMatch(/^whsec_[A-Za-z0-9_-]{32,}$/);
    const second = await s.request('POST', '/api/webhook_secret', { auth: admin });
    expect(second.body.data.secret).not.toBe(first.body.data.secret);
    // There is no way to read it back.
    expect((await s.request('GET', '/api/webhook_secret', { auth: admin })).status).toBe(405);
  });

  it('is needed before any callback: without one, a submit with callback_url is 400 and creates nothing', async () => {
    const other = await createTenant(s, 'nosecret');
    const pg = await createPostgresConnection(s, other.admin);
    const before = await queryCount(other.admin);
    const r = await s.request('POST', `/api/connections/${pg}/query`, {
      auth: other.admin,
      body: { query: 'select 1', callback_url: target.url },
    });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({
      key: 'webhook_secret_required',
      metadata: { field: 'body.callback_url' },
    });
    expect(r.body.message).toContain('POST /api/webhook_secret');
    expect(await queryCount(other.admin)).toBe(before);
  });
});

describe('callback_url', () => {
  it('to the metadata service or any link-local address is refused before anything is created', async () => {
    const before = await queryCount(admin);
    for (const url of [
      'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
      'http://[fd00:ec2::254]/latest/meta-data/',
      'http://[::ffff:169.254.169.254]/',
      'http://[fe80::1]:8080/hook',
    ]) {
      const r = await submit(admin, { query: 'select 1', callback_url: url });
      expect(r.status, `${url}: ${r.text}`).toBe(400);
      expect(['host_not_allowed', 'invalid_callback_url']).toContain(r.body.key);
      expect(r.body.message).toMatch(/^callback_url/);
    }
    expect(await queryCount(admin)).toBe(before);
  });

  it('that is not an http(s) URL, or carries credentials, is 400 invalid_callback_url and creates nothing', async () => {
    const before = await queryCount(admin);
    for (const url of [
      'file:///etc/passwd',
      'ftp://127.0.0.1/x',
      'gopher://127.0.0.1:6379/_FLUSHALL',
      'not a url',
      '/relative/path',
      `http://user:pw@127.0.0.1:${target.port}/`,
      `http://127.0.0.1:${target.port}/${'x'.repeat(2100)}`,
    ]) {
      const r = await submit(admin, { query: 'select 1', callback_url: url });
      expect(r.status, url).toBe(400);
      expect(r.body.key, url).toMatch(/^invalid_callback_url$|^invalid_request$/);
    }
    expect(await queryCount(admin)).toBe(before);
  });

  it('is never followed through a redirect: a 302 to another host counts as a failed attempt', async () => {
    const elsewhere = await startReceiver();
    let redirected = 0;
    const redirector = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        redirected++;
        res.writeHead(302, { location: `${elsewhere.url}/stolen` }).end();
      });
    });
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    const port = (redirector.address() as { port: number }).port;
    try {
      const r = await submit(admin, { query: 'select 1', callback_url: `http://127.0.0.1:${port}/hook` });
      expect(r.status, r.text).toBe(200);
      const id: string = r.body.data.id;
      await waitForQueryEnd(s, admin, id);
      // The first attempt is made at once; its failure is recorded with the redirect's status.
      await waitUntil('the first attempt to be recorded', async () => {
        const row = await s.qrun.store.db
          .selectFrom('webhook_deliveries')
          .select(['last_error'])
          .where('task_id', '=', id)
          .executeTakeFirst();
        return typeof row?.last_error === 'string';
      });
      const row = await s.qrun.store.db
        .selectFrom('webhook_deliveries')
        .select(['status', 'last_error'])
        .where('task_id', '=', id)
        .executeTakeFirstOrThrow();
      expect(row.status).toBe('pending');
      expect(row.last_error).toContain('302');
      expect(redirected).toBeGreaterThanOrEqual(1);
      expect(elsewhere.deliveries).toEqual([]);
    } finally {
      redirector.closeAllConnections();
      await new Promise<void>((resolve) => redirector.close(() => resolve()));
      await elsewhere.close();
    }
  });
});
