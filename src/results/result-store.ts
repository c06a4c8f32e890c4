import { isUuid } from '../core/ids.js';
import type { PageFrame } from '../encoding/result-envelope.js';

/**
 * Where result pages live (DESIGN.md: one blob per page, keyed by query id and page number, written
 * once, deleted on expiry). Files in the embedded deployment, S3-compatible storage when scaled out;
 * both implementations pass test/helpers/result-store-suite.ts.
 *
 * Keys are checked with `resultKey` and `pageNumber` before any storage is touched, so a bad id or page number is a
 * RangeError (a bug in the caller: the API validates ids first), never a path or object-key trick.
 */
export interface ResultStore {
  /**
   * Stores one page's bytes. A reader sees the whole page or nothing, never a prefix. Pages are
   * written once; putting the same page again replaces it whole (a retried task may do that).
   */
  putPage(queryId: string, page: number, bytes: Buffer): Promise<void>;
  /**
   * The page's bytes, or undefined when the page (or the whole result) does not exist. With a frame,
   * `head ‖ page ‖ tail` in one buffer: the page is read into place, so serving it costs no extra copy.
   */
  getPage(queryId: string, page: number, frame?: PageFrame): Promise<Buffer | undefined>;
  /** Deletes every page of the query. Idempotent: a missing result is not an error. */
  deleteResult(queryId: string): Promise<void>;
  /** Releases resources (clients, handles). The store takes no calls afterwards. */
  close(): Promise<void>;
}

/** Storage itself failed (disk, network, permissions): the page may or may not have been written. */
export class ResultStoreError extends Error {
  constructor(
    message: string,
    readonly operation: 'put' | 'get' | 'delete',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ResultStoreError';
  }
}

/** Validates a query id and returns it lower-cased, the one spelling used in storage keys. */
export function resultKey(queryId: string): string {
  if (typeof queryId !== 'string' || !isUuid(queryId)) {
    throw new RangeError(
      `A result store key needs a query id that is a UUID, not ${JSON.stringify(queryId)}.`,
    );
  }
  return queryId.toLowerCase();
}

/** Validates a page number: a non-negative safe integer. */
export function pageNumber(page: number): number {
  if (!Number.isSafeInteger(page) || page < 0) {
    throw new RangeError(`A page number must be a non-negative integer, not ${String(page)}.`);
  }
  return page;
}
