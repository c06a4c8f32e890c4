import { LRUCache } from 'lru-cache';
import { unauthorized } from '../core/errors.js';
import type { ApiKeysRepository } from '../store/repositories/api-keys.js';
import { hashesEqual, hashKey } from './api-keys.js';
import type { Principal } from './principal.js';

const KEY_RE = /^qrun_[uop]_[A-Za-z0-9_-]{43}$/;

/**
 * Resolved principals are remembered briefly: a key lookup is the costliest part of serving a page from
 * memory-fast storage. Any identity change in this process forgets them all at once; other processes
 * notice a revoked key within this time.
 */
export const PRINCIPAL_CACHE_MS = 5_000;
const PRINCIPAL_CACHE_MAX = 10_000;

/**
 * Turns an Authorization header into a Principal:
 * `Bearer <user or partner key>` or `Basic base64(<organization key>:)` (password ignored).
 * Every failure is the same 401, so a caller cannot probe which keys exist.
 */
export class Authenticator {
  /**
   * Keyed by the header as sent, so a repeat caller costs one map lookup: no decoding, no SHA-256. Only
   * the canonical spelling of a header is remembered (see canonicalHeader), so each key has at most one
   * entry per scheme: varying the ignored Basic password, the scheme's case or the spacing cannot fill
   * the cache and push other callers out. Least recently used entries go first.
   */
  private readonly cache: LRUCache<string, Principal>;
  /** Bumped by forgetAll(): a lookup that started before a revocation must not cache what it read. */
  private generation = 0;

  constructor(
    private readonly keys: ApiKeysRepository,
    cache: { max?: number; ttlMs?: number } = {},
  ) {
    this.cache = new LRUCache<string, Principal>({
      max: cache.max ?? PRINCIPAL_CACHE_MAX,
      ttl: cache.ttlMs ?? PRINCIPAL_CACHE_MS,
    });
  }

  /** Drops every remembered principal (after a key is revoked or a user or organization changes). */
  forgetAll(): void {
    this.generation++;
    this.cache.clear();
  }

  async authenticate(header: string | undefined): Promise<Principal> {
    const cached = header === undefined ? undefined : this.cache.get(header);
    if (cached) return cached;
    const key = extractKey(header);
    if (key === undefined || !KEY_RE.test(key)) throw unauthorized();
    const scheme = header!.slice(0, 6).toLowerCase() === 'basic ' ? 'basic' : 'bearer';
    const generation = this.generation;
    const principal = await this.lookup(hashKey(key), scheme);
    if (generation === this.generation && header === canonicalHeader(scheme, key)) {
      this.cache.set(header, principal);
    }
    return principal;
  }

  private async lookup(hash: string, scheme: 'basic' | 'bearer'): Promise<Principal> {
    const found = await this.keys.findActiveByHash(hash);
    if (!found || !hashesEqual(found.key.key_hash, hash)) throw unauthorized();
    const { key: row } = found;
    // The scheme must match the kind: organization keys travel as Basic, the others as Bearer.
    if ((row.kind === 'organization') !== (scheme === 'basic')) throw unauthorized();

    switch (row.kind) {
      case 'partner':
        return { kind: 'partner', keyId: row.id };
      case 'organization':
        return {
          kind: 'organization',
          keyId: row.id,
          organizationId: row.organization_id!,
          organizationName: found.organizationName!,
        };
      case 'user':
        return {
          kind: 'user',
          keyId: row.id,
          userId: row.user_id!,
          email: found.userEmail!,
          role: found.userRole!,
          organizationId: row.organization_id!,
          organizationName: found.organizationName!,
        };
    }
  }
}

/** The one spelling of a header that is cached: `Bearer <key>` or `Basic base64(<key>:)`. */
function canonicalHeader(scheme: 'basic' | 'bearer', key: string): string {
  return scheme === 'bearer' ? `Bearer ${key}` : `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
}

function extractKey(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const space = header.indexOf(' ');
  if (space < 0) return undefined;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer') return value;
  if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon < 0 ? decoded : decoded.slice(0, colon);
  }
  return undefined;
}
