/**
 * The API key lives in this tab's sessionStorage only: it goes when the tab closes or on sign out, and
 * nothing else (no cookie, no localStorage) ever holds it.
 */
const KEY_ITEM = 'qrun.apiKey';

export type KeyKind = 'organization' | 'user' | 'partner';

/** What a key's prefix says it is, or undefined for something that is not a qrun key. */
export function keyKind(key: string): KeyKind | undefined {
  if (key.startsWith('qrun_o_')) return 'organization';
  if (key.startsWith('qrun_u_')) return 'user';
  if (key.startsWith('qrun_p_')) return 'partner';
  return undefined;
}

/** Organization keys go as Basic with an empty password; user and partner keys as Bearer. */
export function authorizationHeader(key: string): string {
  return keyKind(key) === 'organization' ? `Basic ${btoa(`${key}:`)}` : `Bearer ${key}`;
}

export function loadKey(): string | null {
  try {
    return sessionStorage.getItem(KEY_ITEM);
  } catch {
    return null;
  }
}

export function saveKey(key: string): void {
  sessionStorage.setItem(KEY_ITEM, key);
}

/** Sign out: the key and everything this tab remembered. */
export function clearSession(): void {
  sessionStorage.clear();
}
