import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export type KeyKind = 'user' | 'organization' | 'partner';

const PREFIX: Record<KeyKind, string> = { user: 'qrun_u_', organization: 'qrun_o_', partner: 'qrun_p_' };

/** 32 random bytes, base64url, behind a prefix that says what kind of key it is (and makes leaks greppable). */
export function generateKey(kind: KeyKind): string {
  return PREFIX[kind] + randomBytes(32).toString('base64url');
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** What listings show of a key: its prefix and a few characters, never enough to use it. */
export function keyHint(key: string): string {
  return `${key.slice(0, 11)}…`;
}

/** Constant-time comparison of two hex digests of equal length. */
export function hashesEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a, 'hex');
  const bb = Buffer.from(b, 'hex');
  return ba.length === bb.length && timingSafeEqual(ba, bb);
}
