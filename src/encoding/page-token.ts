import { createHmac, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { badRequest } from '../core/errors.js';
import type { AppError } from '../core/errors.js';

/**
 * Page tokens for `links.next` / `links.previous` (CONTRACT.md "Getting status and results"):
 * opaque, URL-safe, tamper-proof and bound to one query.
 *
 * Layout: base64url (no padding) of `varint(page) ‖ HMAC-SHA256(secret, label ‖ queryId ‖ page)[0..16)`.
 * Page 1 gives a 23-character token. 128 bits of MAC is plenty for a value that only selects a page
 * of a result the caller may already read. The query id is lower-cased first, so the token does not
 * depend on how the id was spelled in the URL.
 */
export interface PageTokens {
  sign(queryId: string, page: number): string;
  /** Returns the page number, or throws AppError 400 `invalid_page_token` (and never anything else). */
  verify(queryId: string, token: string): number;
}

const MAC_BYTES = 16;
// A safe integer needs at most 8 varint bytes; anything longer is not ours.
const MAX_VARINT_BYTES = 8;
const MAX_TOKEN_CHARS = Math.ceil(((MAX_VARINT_BYTES + MAC_BYTES) * 4) / 3);
const TOKEN_RE = /^[A-Za-z0-9_-]+$/;
// Domain separation, so this key's MACs can never be confused with another use of the same secret.
const LABEL = 'qrun-page-token-v1\0';
const MIN_SECRET_BYTES = 16;
/**
 * Signed tokens are remembered: serving a page signs its next and previous links and verifies its
 * own token, three HMACs that cost more than the rest of the request's own work (docs/PERFORMANCE.md).
 * A reader following links.next asks for exactly the tokens the previous page signed.
 */
const TOKEN_CACHE_MAX = 20_000;

export function createPageTokens(secret: Buffer): PageTokens {
  if (secret.length < MIN_SECRET_BYTES) {
    throw new RangeError(`The page token secret must be at least ${MIN_SECRET_BYTES} bytes.`);
  }
  // Our own copy: the caller may reuse or wipe its buffer.
  const key = Buffer.from(secret);

  // Least recently used out first, like every bounded cache in qrun (lru-cache).
  const cache = new LRUCache<string, string>({ max: TOKEN_CACHE_MAX });

  const sign = (queryId: string, page: number): string => {
    const id = queryId.toLowerCase();
    const cacheKey = id + '\0' + String(page);
    let token = cache.get(cacheKey);
    if (token === undefined) {
      const mac = createHmac('sha256', key)
        .update(LABEL + cacheKey, 'utf8')
        .digest()
        .subarray(0, MAC_BYTES);
      token = Buffer.concat([writeVarint(page), mac]).toString('base64url');
      cache.set(cacheKey, token);
    }
    return token;
  };

  return {
    sign(queryId, page) {
      if (!Number.isSafeInteger(page) || page < 0) {
        throw new RangeError(`A page number must be a non-negative integer, not ${page}.`);
      }
      return sign(queryId, page);
    },

    verify(queryId, token) {
      try {
        const page = decode(token);
        if (page === undefined) throw invalidToken();
        // decode() accepts only the canonical spelling, so equal bytes mean an equal MAC.
        const actual = Buffer.from(token, 'latin1');
        const expected = Buffer.from(sign(queryId, page), 'latin1');
        if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) throw invalidToken();
        return page;
      } catch {
        // Whatever went wrong (including a non-string token), the caller sees one 400.
        throw invalidToken();
      }
    },
  };
}

function invalidToken(): AppError {
  return badRequest(
    'invalid_page_token',
    'The page token is not valid for this query; follow links.next from the first page.',
  );
}

/** The page number a well-formed token claims, or undefined when its shape is wrong. */
function decode(token: string): number | undefined {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS || !TOKEN_RE.test(token)) return undefined;
  const bytes = Buffer.from(token, 'base64url');
  // Node's decoder ignores stray trailing bits; only the canonical spelling of the bytes is accepted.
  if (bytes.toString('base64url') !== token) return undefined;
  const varintLength = bytes.length - MAC_BYTES;
  if (varintLength < 1 || varintLength > MAX_VARINT_BYTES) return undefined;
  return readVarint(bytes, varintLength);
}

function writeVarint(value: number): Buffer {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return Buffer.from(out);
}

/** Reads an unsigned LEB128 filling exactly `length` bytes, in its shortest form, within safe integers. */
function readVarint(bytes: Buffer, length: number): number | undefined {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < length; i++) {
    const byte = bytes[i] as number;
    const last = i === length - 1;
    if (last === ((byte & 0x80) !== 0)) return undefined;
    // A final zero byte after other bytes is a padded (non-shortest) encoding.
    if (last && byte === 0 && i > 0) return undefined;
    value += (byte & 0x7f) * scale;
    scale *= 0x80;
  }
  return Number.isSafeInteger(value) ? value : undefined;
}
