/**
 * The Authenticator's principal cache, on the real metadata store: a repeat caller is answered from
 * memory, an identity change clears the cache, a cached principal never crosses schemes, only the
 * canonical spelling of a header is remembered (so varying the ignored Basic password cannot push
 * other callers out), and a lookup in flight during a revocation caches nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey, hashKey, keyHint } from '../../src/auth/api-keys.js';
import { Authenticator } from '../../src/auth/authenticator.js';
import { AppError } from '../../src/core/errors.js';
import { migrateToLatest, openMetadataStore, type MetadataStore } from '../../src/store/database.js';
import { ApiKeysRepository } from '../../src/store/repositories/api-keys.js';
import { OrganizationsRepository } from '../../src/store/repositories/organizations.js';
import { UsersRepository } from '../../src/store/repositories/users.js';
import { metadataDatabaseUrl } from '../helpers/deployment.js';
import type { MetadataDatabase } from '../helpers/metadata-db.js';

const NOW = '2026-01-02T10:00:00.000Z';
const ORG = '00000000-0000-4000-8000-000000000001';
const USER = '00000000-0000-4000-8000-000000000011';
const USER_KEY = '00000000-0000-4000-8000-000000000021';
const ORG_KEY = '00000000-0000-4000-8000-000000000022';

async function status(promise: Promise<unknown>): Promise<number> {
  return promise.then(
    () => 200,
    (error: unknown) => (error instanceof AppError ? error.status : 500),
  );
}

describe('Authenticator', () => {
  let dataDir: string;
  let metadata: MetadataDatabase;
  let store: MetadataStore;
  let keys: ApiKeysRepository;
  let lookups = 0;
  const userKey = generateKey('user');
  const orgKey = generateKey('organization');

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'qrun-auth-'));
    metadata = await metadataDatabaseUrl(dataDir);
    store = openMetadataStore(metadata.url);
    await migrateToLatest(store.db);
    await new OrganizationsRepository(store.db).insert({
      id: ORG,
      name: 'acme',
      created_at: NOW,
      updated_at: NOW,
    });
    await new UsersRepository(store.db).insert({
      id: USER,
      organization_id: ORG,
      email: 'ann@example.com',
      role: 'admin',
      created_at: NOW,
      updated_at: NOW,
    });
    keys = new ApiKeysRepository(store.db);
    for (const [id, key, kind, user] of [
      [USER_KEY, userKey, 'user', USER],
      [ORG_KEY, orgKey, 'organization', null],
    ] as const) {
      await keys.insert({
        id,
        kind,
        organization_id: ORG,
        user_id: user,
        key_hash: hashKey(key),
        key_hint: keyHint(key),
        created_at: NOW,
        revoked_at: null,
      });
    }
    // Counts the store lookups the authenticator makes (the real method still runs).
    const find = keys.findActiveByHash.bind(keys);
    keys.findActiveByHash = (hash) => {
      lookups++;
      return find(hash);
    };
  });
  afterAll(async () => {
    await store?.close();
    await metadata?.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('answers a repeat caller from memory, and forgets everyone after an identity change', async () => {
    const auth = new Authenticator(keys);
    const header = `Bearer ${userKey}`;
    const before = lookups;
    expect(await auth.authenticate(header)).toMatchObject({
      kind: 'user',
      userId: USER,
      organizationId: ORG,
    });
    expect(await auth.authenticate(header)).toMatchObject({ kind: 'user', userId: USER });
    expect(lookups - before).toBe(1);

    await keys.revoke(USER_KEY, NOW);
    auth.forgetAll();
    expect(await status(auth.authenticate(header))).toBe(401);
    expect(lookups - before).toBe(2);
  });

  it('never serves a cached principal for the same key under the other scheme', async () => {
    const auth = new Authenticator(keys);
    const basic = `Basic ${Buffer.from(`${orgKey}:`).toString('base64')}`;
    expect(await auth.authenticate(basic)).toMatchObject({ kind: 'organization', organizationId: ORG });
    // Organization keys travel as Basic only.
    expect(await status(auth.authenticate(`Bearer ${orgKey}`))).toBe(401);
  });

  it('does not remember long headers (Basic with a long ignored password)', async () => {
    const auth = new Authenticator(keys);
    const long = `Basic ${Buffer.from(`${orgKey}:${'x'.repeat(1000)}`).toString('base64')}`;
    const before = lookups;
    for (let i = 0; i < 3; i++) {
      expect(await auth.authenticate(long)).toMatchObject({ kind: 'organization', organizationId: ORG });
    }
    expect(lookups - before).toBe(3);
  });

  it('keeps other callers cached while one varies the ignored Basic password', async () => {
    // A small cache with a long life, so the count below depends on what is cached, not on the clock.
    const auth = new Authenticator(keys, { max: 20, ttlMs: 10 * 60_000 });
    const canonical = `Basic ${Buffer.from(`${orgKey}:`).toString('base64')}`;
    await auth.authenticate(canonical);
    const before = lookups;
    // More variants than the cache holds: each is authenticated, none is remembered.
    for (let i = 0; i < 50; i++) {
      const variant = `Basic ${Buffer.from(`${orgKey}:${i}`).toString('base64')}`;
      expect((await auth.authenticate(variant)).kind).toBe('organization');
    }
    expect(lookups - before).toBe(50);
    await auth.authenticate(canonical);
    expect(lookups - before).toBe(50);
  });

  it('does not cache what a lookup read before a revocation it overlapped', async () => {
    const key = generateKey('organization');
    const id = '00000000-0000-4000-8000-000000000023';
    await keys.insert({
      id,
      kind: 'organization',
      organization_id: ORG,
      user_id: null,
      key_hash: hashKey(key),
      key_hint: keyHint(key),
      created_at: NOW,
      revoked_at: null,
    });
    const auth = new Authenticator(keys);
    const header = `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
    // Holds the store's answer until the revocation has happened.
    const find = keys.findActiveByHash;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    keys.findActiveByHash = async (hash) => {
      const found = await find(hash);
      await gate;
      return found;
    };
    try {
      const inFlight = auth.authenticate(header);
      await keys.revoke(id, NOW);
      auth.forgetAll();
      release();
      // The lookup read the key while it was active, so this one request passes...
      expect((await inFlight).kind).toBe('organization');
    } finally {
      keys.findActiveByHash = find;
    }
    // ...but nothing it read was remembered.
    expect(await status(auth.authenticate(header))).toBe(401);
  });
});
