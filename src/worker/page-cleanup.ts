import type { Logger } from 'pino';
import { truncate } from '../core/ids.js';
import { nowIso } from '../core/time.js';
import type { ResultStore } from '../results/result-store.js';
import type { PageDeletionsRepository } from '../store/repositories/page-deletions.js';

export interface PageCleanupDeps {
  results: ResultStore;
  pageDeletions: PageDeletionsRepository;
  log: Logger;
}

/** last_error is for the operator; a store's message is short, but nothing unbounded goes into a row. */
const MAX_ERROR_CHARS = 1000;

/**
 * Deletes a result's pages. A delete that fails is queued in page_deletions, where the sweeper retries
 * it, so the caller goes on as if it had worked (a failed query stays failed, an expired result reads
 * expired). Never throws: when even the queueing fails (the metadata store is down too) it logs, and the
 * orphan sweep finds the pages later. Returns whether the pages are gone now.
 */
export async function deletePages(deps: PageCleanupDeps, queryId: string): Promise<boolean> {
  try {
    await deps.results.deleteResult(queryId);
    return true;
  } catch (err) {
    try {
      await deps.pageDeletions.recordFailure(queryId, nowIso(), errorText(err));
      deps.log.warn({ err, taskId: queryId }, 'could not delete pages; the sweeper will retry');
    } catch (recordErr) {
      deps.log.error(
        { err, recordErr, taskId: queryId },
        'could not delete pages nor queue their deletion; the orphan sweep will find them',
      );
    }
    return false;
  }
}

export function errorText(err: unknown): string {
  return truncate(err instanceof Error ? err.message : String(err), MAX_ERROR_CHARS);
}
