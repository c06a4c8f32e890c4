import { pageRowTexts, type StoredResult } from './stored-rows.js';

/**
 * ndjson: one row object per line, exactly as stored (the same JSON as GET /api/queries/{id}'s `results`):
 * the rows are cut out of the stored page, never re-encoded. One chunk per stored page.
 */
export async function* ndjsonChunks(result: StoredResult): AsyncGenerator<Buffer> {
  for await (const page of result.pages()) {
    const rows = pageRowTexts(page);
    if (rows.length > 0) yield Buffer.from(rows.join('\n') + '\n', 'utf8');
  }
}

/** json: one JSON array of all row objects, streamed page by page (a row per line inside it). */
export async function* jsonChunks(result: StoredResult): AsyncGenerator<Buffer> {
  let first = true;
  yield Buffer.from('[');
  for await (const page of result.pages()) {
    const rows = pageRowTexts(page);
    if (rows.length === 0) continue;
    yield Buffer.from((first ? '\n' : ',\n') + rows.join(',\n'), 'utf8');
    first = false;
  }
  yield Buffer.from(first ? ']\n' : '\n]\n');
}
