/** Times are stored and compared as RFC 3339 UTC strings with milliseconds: portable and sortable as text. */
export function nowIso(): string {
  return new Date().toISOString();
}

export function isoAfter(iso: string, ms: number): string {
  return new Date(Date.parse(iso) + ms).toISOString();
}

/** The wire form drops milliseconds: `2026-11-28T10:00:00Z`. */
export function toWireTime(iso: string): string {
  return `${iso.slice(0, 19)}Z`;
}
