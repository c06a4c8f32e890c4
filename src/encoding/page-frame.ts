/**
 * A stored page is served inside bytes that come before and after it (the HTTP layer's envelope, see
 * src/http/result-envelope.ts). The result store reads the page straight into the space between them,
 * so a response costs one allocation and no copy or parse of the rows.
 */
export interface PageFrame {
  head: Buffer;
  tail: Buffer;
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
