/**
 * The JSON around one stored page in GET /api/queries/{id} (CONTRACT.md "Getting status and results"):
 * `{"data":{…,"results":` ‖ page ‖ `,"error":null},"links":{…}}`. The page is never parsed or
 * re-encoded: the result store reads it straight into the space between these two parts.
 */
export interface FinishedResultMeta {
  id: string;
  /** The JSON array of field names, as stored. */
  fieldsJson: string;
  /** The JSON array of {name, type}, as stored. */
  schemaJson: string;
  count: number;
  truncated: boolean;
  expires: string;
  nextPage: string | null;
  previousPage: string | null;
}

export interface PageFrame {
  head: Buffer;
  tail: Buffer;
}

export function resultEnvelope(meta: FinishedResultMeta): PageFrame {
  const link = (token: string | null) =>
    token === null ? null : `/api/queries/${meta.id}?page=${encodeURIComponent(token)}`;
  const head =
    `{"data":{"id":${JSON.stringify(meta.id)},"status":"done","fields":${meta.fieldsJson},` +
    `"schema":${meta.schemaJson},"count":${meta.count},"truncated":${meta.truncated},` +
    `"expires":${JSON.stringify(meta.expires)},"results":`;
  const links = JSON.stringify({ next: link(meta.nextPage), previous: link(meta.previousPage) });
  return { head: Buffer.from(head), tail: Buffer.from(`,"error":null},"links":${links}}`) };
}

/** head ‖ page ‖ tail in one buffer, for stores that receive the page as bytes of their own. */
export function framed(page: Uint8Array, frame: PageFrame | undefined): Buffer {
  if (frame === undefined) return Buffer.from(page.buffer, page.byteOffset, page.byteLength);
  const out = Buffer.allocUnsafe(frame.head.length + page.byteLength + frame.tail.length);
  frame.head.copy(out, 0);
  out.set(page, frame.head.length);
  frame.tail.copy(out, frame.head.length + page.byteLength);
  return out;
}
