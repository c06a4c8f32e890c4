/**
 * Attacks on the principal cache, through real HTTP:
 * - flushing other callers out of it by sending one key with ever-different ignored Basic passwords;
 * - putting a revoked key back into it with a request whose lookup was in flight during the revocation.
 * The store lookups are counted (and, for the race, held) by wrapping the repository's method in this
 * process, which is where the test server runs.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../src/auth/api-keys.js';
import { ApiKeysRepository } from '../../src/store/repositories/api-keys.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

let s: TestServer;
let orgId: string;
const original = ApiKeysRepository.prototype.findActiveByHash;
/** Store lookups per key hash. */
const lookups = new Map<string, number>();
/** Hash → a gate the lookup waits on after reading the store. */
const gates = new Map<string, Promise<void>>();

beforeAll(async () => {
  ApiKeysRepository.prototype.findActiveByHash = async function (this: ApiKeysRepository, hash: string) {
    lookups.set(hash, (lookups.get(hash) ?? 0) + 1);
    const found = await original.call(this, hash);
    await gates.get(hash);
    return found;
  };
  s = await startTestServer();
  orgId = (await s.request('GET', '/api/me', { auth: { bearer: s.adminKey } })).body.data.organization_id;
});
afterAll(async () => {
  ApiKeysRepository.prototype.findActiveByHash = original;
  await s?.close();
});
afterEach(() => gates.clear());

async function organizationKey(): Promise<{ id: string; value: string }> {
  const r = await s.request('POST', `/api/organizations/${orgId}/keys`, { auth: { bearer: s.adminKey } });
  expect(r.status).toBe(200);
  return r.body.data;
}

const basic = (key: string, password = '') => `Basic ${Buffer.from(`${key}:${password}`).toString('base64')}`;

describe('the principal cache', () => {
  it('does not remember a key sent with a varying Basic password, so it cannot push others out', async () => {
    const key = await organizationKey();
    const hash = hashKey(key.value);
    const me = (header: string) => s.request('GET', '/api/me', { auth: { raw: header } });
    expect((await me(basic(key.value))).status).toBe(200);
    const afterCanonical = lookups.get(hash) ?? 0;
    // The canonical header is remembered: a repeat costs no lookup.
    expect((await me(basic(key.value))).status).toBe(200);
    expect(lookups.get(hash)).toBe(afterCanonical);

    // Every variant is accepted but costs its sender a lookup, the same variant again included:
    // none of them took a place in the cache.
    for (let i = 0; i < 40; i++) expect((await me(basic(key.value, `pw-${i}`))).status).toBe(200);
    expect((await me(basic(key.value, 'pw-0'))).status).toBe(200);
    expect((await me(`bAsIc  ${Buffer.from(`${key.value}:`).toString('base64')}`)).status).toBe(200);
    expect(lookups.get(hash)).toBe(afterCanonical + 42);
  });

  it('a lookup in flight during a revocation does not put the revoked key back', async () => {
    const key = await organizationKey();
    const hash = hashKey(key.value);
    let open!: () => void;
    gates.set(hash, new Promise<void>((resolve) => (open = resolve)));
    const inFlight = s.request('GET', '/api/me', { auth: { basic: key.value } });
    // Wait until that request has read the (still active) key from the store.
    await waitUntil('the in-flight request to look the key up', () => (lookups.get(hash) ?? 0) > 0, {
      intervalMs: 0,
    });

    const revoked = await s.request('DELETE', `/api/organizations/${orgId}/keys/${key.id}`, {
      auth: { bearer: s.adminKey },
    });
    expect(revoked.status).toBe(204);
    open();
    // It read the key before the revocation, so this one request still passes...
    expect((await inFlight).status).toBe(200);
    // ...but the key is refused from then on.
    const after = await s.request('GET', '/api/me', { auth: { basic: key.value } });
    expect(after.status).toBe(401);
    expect(after.body.key).toBe('unauthorized');
  });
});
