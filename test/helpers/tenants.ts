import { expect } from 'vitest';
import type { Auth, TestServer } from './server.js';

/** PostgreSQL on this machine, as the tests' tenants store it (trust auth: no password needed). */
export const LOCAL_POSTGRES = { hostname: '127.0.0.1', port: 5432, database: 'test', username: 'postgres' };

export interface Tenant {
  organizationId: string;
  /** An admin user's key. */
  admin: Auth;
}

/** A new organization with an admin user, made with the partner key. */
export async function createTenant(s: TestServer, name: string): Promise<Tenant> {
  const partner = { bearer: s.partnerKey };
  const org = await s.request('POST', '/api/organizations', { auth: partner, body: { name } });
  expect(org.status).toBe(200);
  const organizationId: string = org.body.data.id;
  const user = await s.request('POST', `/api/organizations/${organizationId}/users`, {
    auth: partner,
    body: { email: `admin@${name}.example`, role: 'admin' },
  });
  const key = await s.request(
    'POST',
    `/api/organizations/${organizationId}/users/${user.body.data.id}/keys`,
    {
      auth: partner,
    },
  );
  expect(key.status).toBe(200);
  return { organizationId, admin: { bearer: key.body.data.value } };
}

/** A stored connection to the local PostgreSQL; returns its id. */
export async function createPostgresConnection(s: TestServer, auth: Auth, name = 'pg'): Promise<string> {
  const r = await s.request('POST', '/api/connections', {
    auth,
    body: { name, type: 'postgresql', configuration: LOCAL_POSTGRES },
  });
  expect(r.status, r.text).toBe(200);
  return r.body.data.id;
}

/** Submits SQL and returns the new query's id (the submit must succeed). */
export async function submitQuery(
  s: TestServer,
  auth: Auth,
  connectionId: string,
  query: string,
): Promise<string> {
  const r = await s.request('POST', `/api/connections/${connectionId}/query`, { auth, body: { query } });
  expect(r.status, r.text).toBe(200);
  return r.body.data.id;
}
