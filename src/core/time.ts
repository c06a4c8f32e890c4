/** Times are stored and compared as RFC 3339 UTC strings with milliseconds: portable and sortable as text. */
export function nowIso(): string {
  return new Date().toISOString();
}

/**
 * The time now, as services, the sweeper and idempotency see it (an RFC 3339 string like nowIso's).
 * Injectable, so a test can move time forward instead of waiting for it; waits and timeouts (long-polls,
 * query timeouts, leases) keep the real clock.
 */
export type Clock = () => string;

export const systemClock: Clock = nowIso;

export function isoAfter(iso: string, ms: number): string {
  return new Date(Date.parse(iso) + ms).toISOString();
}

/** The wire form drops milliseconds: `2026-11-28T10:00:00Z`. */
export function toWireTime(iso: string): string {
  return `${iso.slice(0, 19)}Z`;
}
