import type { Db } from '../database.js';
import type { PageDeletionsTable } from '../schema.js';

export type PageDeletionRow = PageDeletionsTable;

/**
 * Results whose pages still have to be deleted: a delete that failed, or an organization deleted with
 * its tasks. The sweeper works through them (src/worker/sweeper.ts) and removes each row once the
 * pages are gone. Rows are keyed by query id, so asking twice for the same result is one deletion.
 */
export class PageDeletionsRepository {
  constructor(private readonly db: Db) {}

  /** Queues one result after a delete that failed with `error`; a second failure only updates the row. */
  async recordFailure(queryId: string, now: string, error: string): Promise<void> {
    await this.db
      .insertInto('page_deletions')
      .values({ query_id: queryId, requested_at: now, attempts: 1, last_error: error })
      .onConflict((oc) =>
        oc.column('query_id').doUpdateSet((eb) => ({
          attempts: eb('page_deletions.attempts', '+', 1),
          last_error: eb.ref('excluded.last_error'),
        })),
      )
      .execute();
  }

  /**
   * Queues the results of an organization, before the organization (and with it, through the foreign
   * key, its task rows) is deleted: call it in the same transaction as that delete. Only tasks that may
   * hold pages: running ones and done ones (expired or not). Failed and lost tasks had their pages
   * deleted, or queued here, when they ended; waiting ones have none. The orphan sweep catches the rest.
   */
  async requestForOrganization(organizationId: string, now: string): Promise<number> {
    const r = await this.db
      .insertInto('page_deletions')
      .columns(['query_id', 'requested_at'])
      // SQLite needs the WHERE here: it tells INSERT … SELECT apart from the ON CONFLICT clause.
      .expression((eb) =>
        eb
          .selectFrom('query_tasks')
          .select((s) => ['id', s.val(now).as('requested_at')])
          .where('organization_id', '=', organizationId)
          .where('status', 'in', ['running', 'done']),
      )
      .onConflict((oc) => oc.column('query_id').doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n);
  }

  /** The next deletions to try: those tried least first, then the oldest, so one stuck result cannot block the rest. */
  listDue(limit: number): Promise<Pick<PageDeletionRow, 'query_id' | 'attempts'>[]> {
    return this.db
      .selectFrom('page_deletions')
      .select(['query_id', 'attempts'])
      .orderBy('attempts')
      .orderBy('requested_at')
      .orderBy('query_id')
      .limit(limit)
      .execute();
  }

  async recordAttemptFailed(queryId: string, error: string): Promise<void> {
    await this.db
      .updateTable('page_deletions')
      .set((eb) => ({ attempts: eb('attempts', '+', 1), last_error: error }))
      .where('query_id', '=', queryId)
      .execute();
  }

  /** The pages are gone: forget the deletion. */
  async remove(queryId: string): Promise<void> {
    await this.db.deleteFrom('page_deletions').where('query_id', '=', queryId).execute();
  }

  find(queryId: string): Promise<PageDeletionRow | undefined> {
    return this.db
      .selectFrom('page_deletions')
      .selectAll()
      .where('query_id', '=', queryId)
      .executeTakeFirst();
  }

  async count(): Promise<number> {
    const r = await this.db
      .selectFrom('page_deletions')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }
}
