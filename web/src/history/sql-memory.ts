/**
 * The history lists each query's SQL cut at 1000 characters. The console remembers the whole text of the
 * longer queries it submitted in this tab (sessionStorage, the 50 most recent), so they can run again.
 */
const INDEX_ITEM = 'qrun.sqlMemory';
const LIMIT = 50;
const PREVIEW_CHARS = 1000;

export function rememberSql(id: string, sql: string): void {
  if (sql.length <= PREVIEW_CHARS) return;
  try {
    const ids = (JSON.parse(sessionStorage.getItem(INDEX_ITEM) ?? '[]') as string[]).filter((x) => x !== id);
    ids.push(id);
    while (ids.length > LIMIT) sessionStorage.removeItem(`qrun.sql.${ids.shift()}`);
    sessionStorage.setItem(`qrun.sql.${id}`, sql);
    sessionStorage.setItem(INDEX_ITEM, JSON.stringify(ids));
  } catch {
    // Storage full or unavailable: the history still has the preview.
  }
}

/** The whole SQL of a query: remembered, or the preview when it was not cut. */
export function fullSql(id: string, preview: string): string | null {
  const remembered = sessionStorage.getItem(`qrun.sql.${id}`);
  if (remembered !== null) return remembered;
  return isCut(preview) ? null : preview;
}

export function isCut(preview: string): boolean {
  return preview.length > PREVIEW_CHARS && preview.endsWith('…');
}
