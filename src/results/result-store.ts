import { AppError } from '../core/errors.js';
import { isUuid } from '../core/ids.js';
import type { PageFrame } from '../encoding/page-frame.js';

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
  /**
   * Throws AppError 503 `storage_full` when the store cannot take `bytes` more (default 0) and still
   * keep its reserve: files, below QRUN_MIN_FREE_BYTES free on their volume; S3 never refuses. Cheap
   * enough to call before every page.
   */
  assertRoom(bytes?: number): Promise<void>;
  /**
   * The ids of the results in the store (those with at least one page, or a leftover temp file), in
   * ascending order, lower-case, only those greater than `after`: at most `limit` of them, and fewer
   * only at the end of the store. Entries that are not named like a result (not a UUID, not where this
   * store would put one) are skipped, never returned. For the orphan sweep (src/worker/sweeper.ts).
   */
  listResultIds(after: string | undefined, limit: number): Promise<string[]>;
  /** Releases resources (clients, handles). The store takes no calls afterwards. */
  close(): Promise<void>;
}

/** What assertRoom throws: the caller is told to come back later, and nothing is created. */
export function storageFull(): AppError {
  return new AppError(
    503,
    'storage_full',
    'This server is short of storage for query results, so it takes no new queries for now; try again later.',
    { headers: { 'retry-after': '60' } },
  );
}

/** Whether `error` means the store has no room: refused by assertRoom, or the disk or a quota is full. */
export function isStorageFull(error: unknown): boolean {
  if (error instanceof AppError) return error.key === 'storage_full';
  if (!(error instanceof ResultStoreError)) return false;
  const code = (error.cause as { code?: unknown } | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** Storage itself failed (disk, network, permissions): the page may or may not have been written. */
export class ResultStoreError extends Error {
  constructor(
    message: string,
    readonly operation: 'put' | 'get' | 'delete' | 'list',
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

/** A result id as the stores write it: a lower-case UUID. Other names in the storage are not qrun's. */
export function isResultKey(name: string): boolean {
  return isUuid(name) && name === name.toLowerCase();
}

/** Validates a listing's size: a positive safe integer. */
export function listLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError(`A listing limit must be a positive integer, not ${String(limit)}.`);
  }
  return limit;
}

/** Validates a page number: a non-negative safe integer. */
export function pageNumber(page: number): number {
  if (!Number.isSafeInteger(page) || page < 0) {
    throw new RangeError(`A page number must be a non-negative integer, not ${String(page)}.`);
  }
  return page;
}
