/**
 * Whole-result exports (GET /api/queries/{id}/export), tried as another tenant or another member would,
 * through real HTTP on the deployment under test: a result is its submitter's alone in every format, the
 * answer to someone else is the same 404 as for a query that does not exist (nothing tells them it does),
 * and the file name cannot be steered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type Auth, type TestServer } from '../helpers/server.js';
import { createPostgresConnection, createTenant, submitQuery } from '../helpers/tenants.js';
import { waitForQueryEnd } from '../helpers/wait.js';

let s: TestServer;
let owner: Auth;
let colleague: Auth;
let stranger: Auth;
let queryId: string;

beforeAll(async () => {
  s = await startTestServer();
  const a = await createTenant(s, 'export-a');
  owner = a.admin;
  const user = await s.request('POST', `/api/organizations/${a.organizationId}/users`, {
    auth: owner,
    body: { email: 'colleague@export-a.example', role: 'admin' },
  });
  const key = await s.request(
    'POST',
    `/api/organizations/${a.organizationId}/users/${user.body.data.id}/keys`,
    { auth: owner },
  );
  colleague = { bearer: key.body.data.value };
  stranger = (await createTenant(s, 'export-b')).admin;
  const pg = await createPostgresConnection(s, owner);
  queryId = await submitQuery(s, owner, pg, "select 'secret of A' as secret");
  await waitForQueryEnd(s, owner, queryId);
});
afterAll(() => s?.close());

const FORMATS = ['csv', 'tsv', 'ndjson', 'json', 'parquet', 'arrow'];

describe('exports', () => {
  it('give the owner the file', async () => {
    const r = await fetch(`${s.url}/api/queries/${queryId}/export?format=csv`, {
      headers: { authorization: `Bearer ${owner.bearer}` },
    });
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('secret of A');
  });

  it('answer another organization, and another member of the same one, as for no such query', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    for (const format of FORMATS) {
      const nothing = await s.request('GET', `/api/queries/${missing}/export?format=${format}`, {
        auth: stranger,
      });
      expect(nothing.status).toBe(404);
      for (const who of [stranger, colleague]) {
        const r = await s.request('GET', `/api/queries/${queryId}/export?format=${format}`, { auth: who });
        expect(r.status, `${format}: ${r.text}`).toBe(404);
        expect(r.body).toEqual({ ...nothing.body, message: nothing.body.message.replace(missing, queryId) });
        expect(r.text).not.toContain('secret of A');
      }
    }
  });

  it('need a key, and take the owner’s key only as a header (a key in the URL is not one)', async () => {
    expect((await s.request('GET', `/api/queries/${queryId}/export?format=csv`)).status).toBe(401);
    const inUrl = await s.request(
      'GET',
      `/api/queries/${queryId}/export?format=csv&api_key=${encodeURIComponent(owner.bearer!)}`,
    );
    expect(inUrl.status).toBe(401);
  });

  it('name the file after the query id only: format and path tricks are 400, never a header', async () => {
    for (const format of ['../../etc/passwd', 'csv"; filename="evil.sh', 'csv\r\nSet-Cookie: a=b', 'CSV ']) {
      const r = await s.request(
        'GET',
        `/api/queries/${queryId}/export?format=${encodeURIComponent(format)}`,
        {
          auth: owner,
        },
      );
      expect(r.status, format).toBe(400);
      expect(r.body.key).toBe('invalid_format');
      expect(r.headers.get('content-disposition')).toBeNull();
      expect(r.headers.get('set-cookie')).toBeNull();
    }
    const ok = await fetch(`${s.url}/api/queries/${queryId}/export?format=ndjson`, {
      headers: { authorization: `Bearer ${owner.bearer}` },
    });
    expect(ok.headers.get('content-disposition')).toBe(`attachment; filename="${queryId}.ndjson"`);
    await ok.body?.cancel();
  });

  it('cannot hold the server open by not reading: closing the server cuts the download', async () => {
    const other = await startTestServer();
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    try {
      const t = await createTenant(other, 'export-slow');
      const pg = await createPostgresConnection(other, t.admin);
      const id = await submitQuery(
        other,
        t.admin,
        pg,
        'select g, md5(g::text) from generate_series(1, 200000) g',
      );
      await waitForQueryEnd(other, t.admin, id);
      const r = await fetch(`${other.url}/api/queries/${id}/export?format=csv`, {
        headers: { authorization: `Bearer ${t.admin.bearer}` },
      });
      expect(r.status).toBe(200);
      reader = r.body!.getReader();
      expect((await reader.read()).done).toBe(false);
      // The client reads no more. Closing the server must not wait for it (the test would time out).
      await other.close();
      // The client sees the download end early, as an error, never as a complete file.
      await expect(
        (async () => {
          for (;;) if ((await reader!.read()).done) return 'complete';
        })(),
      ).rejects.toThrow();
    } finally {
      await other.close();
    }
  });
});
