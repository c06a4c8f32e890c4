/**
 * What the fuzzer points its requests at: two organizations with their users, keys, connections and
 * queries (finished ones, and one that keeps running), so that generated ids and credentials reach the
 * handlers (and each other's objects), not just the id check and the 401.
 *
 * Destructive requests (DELETE, and PUT on a user, which can demote the admin whose key the fuzzer uses)
 * only ever name a disposable object as their target; one that a request deleted is made again at once
 * (`afterAnswer`). Otherwise one lucky DELETE of the admin's organization (by the partner key), or of
 * the organization key, would turn every later case into a 401 and hide whatever those cases would have
 * found. Their other path ids (the organization a user is in, say) may be any known id.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import type { TestServer } from '../helpers/server.js';
import { waitForQueryEnd } from '../helpers/wait.js';

export type CredentialName = 'admin' | 'partner' | 'user' | 'orgKey' | 'otherAdmin';

export interface Credential {
  name: CredentialName;
  header: string;
  /** The organization it acts in; undefined for the partner. */
  organizationId?: string;
}

/** Kinds of object a path parameter names. */
export type IdKind = 'organization' | 'user' | 'userKey' | 'orgKey' | 'connection' | 'query';

export interface Owned {
  organizationId: string;
  /** For queries: the only credential that may read it. */
  owner?: CredentialName;
}

export interface World {
  credentials: Credential[];
  adminOrgId: string;
  /** Every id the fuzzer may use per kind, and which of them a destructive request may target. */
  ids: Record<IdKind, { all: string[]; disposable: string[] }>;
  /** Which organization (and for queries which credential) each known id belongs to. */
  owners: Map<string, Owned>;
  /** A valid page token: `links.next` of a multi-page result. */
  pageToken: string;
  revokedKey: string;
  /** Connection types as GET /api/connection_types lists them. */
  connectionTypes: ConnectionType[];
  /**
   * Called after each answer to a request whose last path id is a known one: makes a new disposable
   * object for one that a DELETE removed, and a new running query for one that a cancel ended.
   */
  afterAnswer(method: string, path: string, id: string, status: number): Promise<void>;
}

export interface ConnectionType {
  id: string;
  fields: { name: string; type: string; required: boolean; secret: boolean; default?: unknown }[];
}

const basic = (key: string) => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;

/** The connection every submit can reach: the test PostgreSQL, where random SQL just fails. */
export const PG_CONFIG = {
  hostname: '127.0.0.1',
  port: 5432,
  database: 'test',
  username: 'postgres',
  password: 'fuzz-pg-secret-7c1e',
};

export async function buildWorld(s: TestServer): Promise<World> {
  const admin = { bearer: s.adminKey };
  const partner = { bearer: s.partnerKey };
  const ok = async (
    method: string,
    path: string,
    auth: { bearer?: string; basic?: string },
    body?: unknown,
  ) => {
    const r = await s.request(method, path, { auth, body });
    expect(r.status, `${method} ${path}: ${r.text}`).toBeLessThan(300);
    return r.body?.data;
  };

  const me = await ok('GET', '/api/me', admin);
  const adminOrgId: string = me.organization_id;
  const adminUserId: string = me.id;
  const adminKeyId: string = (
    await ok('GET', `/api/organizations/${adminOrgId}/users/${adminUserId}/keys`, admin)
  )[0].id;

  const plainUser = await ok('POST', `/api/organizations/${adminOrgId}/users`, admin, {
    email: 'fuzz-user@example.com',
    role: 'user',
  });
  const plainKey = await ok('POST', `/api/organizations/${adminOrgId}/users/${plainUser.id}/keys`, admin);
  const orgKey = await ok('POST', `/api/organizations/${adminOrgId}/keys`, admin);
  const revoked = await ok('POST', `/api/organizations/${adminOrgId}/users/${plainUser.id}/keys`, admin);
  await ok('DELETE', `/api/organizations/${adminOrgId}/users/${plainUser.id}/keys/${revoked.id}`, admin);

  const other = await ok('POST', '/api/organizations', partner, { name: 'fuzz-other' });
  const otherAdmin = await ok('POST', `/api/organizations/${other.id}/users`, partner, {
    email: 'fuzz-other-admin@example.com',
    role: 'admin',
  });
  const otherKey = await ok('POST', `/api/organizations/${other.id}/users/${otherAdmin.id}/keys`, partner);

  const pg = await ok('POST', '/api/connections', admin, {
    name: 'fuzz-pg',
    type: 'postgresql',
    configuration: PG_CONFIG,
  });
  // An empty file is an empty SQLite database.
  mkdirSync(path.join(s.fileRoot, adminOrgId), { recursive: true });
  writeFileSync(path.join(s.fileRoot, adminOrgId, 'fuzz.db'), '');
  const sqlite = await ok('POST', '/api/connections', admin, {
    name: 'fuzz-sqlite',
    type: 'sqlite',
    configuration: { path: 'fuzz.db' },
    validate: false,
  });
  const otherPg = await ok(
    'POST',
    '/api/connections',
    { bearer: otherKey.value },
    {
      name: 'fuzz-other-pg',
      type: 'postgresql',
      configuration: PG_CONFIG,
    },
  );

  // Finished queries of each credential: reads and cancels of them answer at once (no long-poll waits).
  const run = async (auth: { bearer?: string; basic?: string }, connectionId: string, query: string) => {
    const { id } = await ok('POST', `/api/connections/${connectionId}/query`, auth, { query });
    // Polled: long-polls answer at once on this server (QRUN_MAX_WAITS_PER_KEY=0).
    const r = await waitForQueryEnd(s, auth, id, { waitSeconds: 0, intervalMs: 100, timeoutMs: 30_000 });
    expect(['done', 'failed'], r.text).toContain(r.body.data.status);
    return { id: id as string, next: r.body.links?.next as string | undefined };
  };
  const paged = await run(admin, pg.id, 'select n from generate_series(1, 2500) n');
  const failed = await run(admin, pg.id, 'select 1/0');
  const byOrgKey = await run({ basic: orgKey.value }, pg.id, 'select 1 as a, 2 as a');
  const byUser = await run({ bearer: plainKey.value }, pg.id, 'select 2 as b');
  const byOther = await run({ bearer: otherKey.value }, otherPg.id, 'select 3 as c');
  // One query that is always running, so cancels reach a query they can stop (and reads see `running`).
  // It has a connection of its own, outside the pools: no generated request can repoint it. Reads of it
  // answer at once because the fuzz server runs with QRUN_MAX_WAITS_PER_KEY=0.
  const sleeperConnection = await ok('POST', '/api/connections', admin, {
    name: 'fuzz-sleeper',
    type: 'postgresql',
    configuration: PG_CONFIG,
    validate: false,
  });
  const startSleeper = async (): Promise<string> =>
    (
      await ok('POST', `/api/connections/${sleeperConnection.id}/query`, admin, {
        query: 'select pg_sleep(600)',
      })
    ).id;
  let sleeper = await startSleeper();
  const pageToken = decodeURIComponent(/[?&]page=([^&]+)/.exec(paged.next ?? '')?.[1] ?? '');
  expect(pageToken).not.toBe('');

  const owners = new Map<string, Owned>();
  const own = (id: string, organizationId: string, owner?: CredentialName) =>
    owners.set(id, { organizationId, owner });
  for (const id of [
    adminOrgId,
    adminUserId,
    adminKeyId,
    plainUser.id,
    plainKey.id,
    orgKey.id,
    revoked.id,
    pg.id,
    sqlite.id,
  ])
    own(id, adminOrgId);
  for (const id of [other.id, otherAdmin.id, otherKey.id, otherPg.id]) own(id, other.id);
  own(paged.id, adminOrgId, 'admin');
  own(failed.id, adminOrgId, 'admin');
  own(byOrgKey.id, adminOrgId, 'orgKey');
  own(byUser.id, adminOrgId, 'user');
  own(byOther.id, other.id, 'otherAdmin');
  own(sleeper, adminOrgId, 'admin');

  const ids: World['ids'] = {
    organization: { all: [adminOrgId, other.id], disposable: [] },
    user: { all: [adminUserId, plainUser.id, otherAdmin.id], disposable: [] },
    userKey: { all: [adminKeyId, plainKey.id, revoked.id, otherKey.id], disposable: [revoked.id] },
    orgKey: { all: [orgKey.id], disposable: [] },
    connection: { all: [pg.id, sqlite.id, otherPg.id], disposable: [] },
    query: { all: [paged.id, failed.id, byOrgKey.id, byUser.id, byOther.id, sleeper], disposable: [] },
  };

  /** Disposable objects, all in the admin's organization except the organization itself. */
  const makers: Record<Exclude<IdKind, 'query'>, () => Promise<string>> = {
    organization: async () =>
      (await ok('POST', '/api/organizations', partner, { name: `fuzz-disposable-${Math.random()}` })).id,
    user: async () =>
      (
        await ok('POST', `/api/organizations/${adminOrgId}/users`, admin, {
          email: `fuzz-disposable-${Math.random()}@example.com`,
        })
      ).id,
    userKey: async () =>
      (await ok('POST', `/api/organizations/${adminOrgId}/users/${plainUser.id}/keys`, admin)).id,
    orgKey: async () => (await ok('POST', `/api/organizations/${adminOrgId}/keys`, admin)).id,
    connection: async () =>
      (
        await ok('POST', '/api/connections', admin, {
          name: `fuzz-disposable-${Math.random()}`,
          type: 'postgresql',
          configuration: PG_CONFIG,
          validate: false,
        })
      ).id,
  };
  const addDisposable = async (kind: Exclude<IdKind, 'query'>) => {
    const id = await makers[kind]();
    own(id, kind === 'organization' ? id : adminOrgId);
    ids[kind].all.push(id);
    ids[kind].disposable.push(id);
  };
  for (const kind of Object.keys(makers) as Exclude<IdKind, 'query'>[]) await addDisposable(kind);

  const types = await ok('GET', '/api/connection_types', admin);

  return {
    credentials: [
      { name: 'admin', header: `Bearer ${s.adminKey}`, organizationId: adminOrgId },
      { name: 'partner', header: `Bearer ${s.partnerKey}` },
      { name: 'user', header: `Bearer ${plainKey.value}`, organizationId: adminOrgId },
      { name: 'orgKey', header: basic(orgKey.value), organizationId: adminOrgId },
      { name: 'otherAdmin', header: `Bearer ${otherKey.value}`, organizationId: other.id },
    ],
    adminOrgId,
    ids,
    owners,
    pageToken,
    revokedKey: revoked.value,
    connectionTypes: types,
    async afterAnswer(method, routePath, id, status) {
      if (method === 'POST' && routePath.endsWith('/cancel') && status === 200 && id === sleeper) {
        const next = await startSleeper();
        own(next, adminOrgId, 'admin');
        ids.query.all = [...ids.query.all.filter((q) => q !== sleeper), next];
        sleeper = next;
        return;
      }
      if (method !== 'DELETE' || status !== 204) return;
      for (const kind of Object.keys(makers) as Exclude<IdKind, 'query'>[]) {
        const pool = ids[kind];
        if (!pool.disposable.includes(id)) continue;
        pool.disposable = pool.disposable.filter((d) => d !== id);
        pool.all = pool.all.filter((d) => d !== id);
        await addDisposable(kind);
      }
    },
  };
}
