import type { Kysely } from 'kysely';

/**
 * Issue 12: four statuses on the wire, error details, client-chosen page size.
 * - `error_details` (JSON text): a failed query's machine-readable {code, sqlstate, retryable, position};
 * - `page_rows`: the rows per page a submit asked for (null: the server's QRUN_PAGE_ROWS);
 * - `pages_until`: when a done query's pages are due for deletion, cleared once they are deleted (the sweeper
 *   finds due results by this index instead of by status, since expired results stay `done`).
 * And the data: the fifth status `unknown` goes. Expired results (they had finished, so they have fields)
 * become `done` again, with their pages already deleted: past their `expires`, they answer 404 `expired`. The
 * rest were lost with their worker and become `failed` with error_details code `lost`. Failures recorded
 * before error_details existed get the code their message names (canceled, timeout, interrupted).
 * Portable: one column per ALTER TABLE (SQLite), plain UPDATEs, text JSON (see 0001).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the current schema types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('query_tasks').addColumn('error_details', 'text').execute();
  await db.schema.alterTable('query_tasks').addColumn('page_rows', 'integer').execute();
  await db.schema.alterTable('query_tasks').addColumn('pages_until', 'text').execute();
  await db.schema.createIndex('query_tasks_pages_until').on('query_tasks').column('pages_until').execute();

  await db
    .updateTable('query_tasks')
    .set((eb) => ({ pages_until: eb.ref('expires_at') }))
    .where('status', '=', 'done')
    .execute();
  await db
    .updateTable('query_tasks')
    .set({ status: 'done', error: null, page_count: 0 })
    .where('status', '=', 'unknown')
    .where('fields', 'is not', null)
    .execute();
  await db
    .updateTable('query_tasks')
    .set({ status: 'failed', error_details: details('lost', true) })
    .where('status', '=', 'unknown')
    .execute();

  const earlier: [string, string, boolean][] = [
    ['canceled', 'canceled', false],
    ['timeout:%', 'timeout', false],
    ['interrupted:%', 'interrupted', true],
    ['lost:%', 'lost', true],
  ];
  for (const [pattern, code, retryable] of earlier) {
    await db
      .updateTable('query_tasks')
      .set({ error_details: details(code, retryable) })
      .where('status', '=', 'failed')
      .where('error_details', 'is', null)
      .where('error', 'like', pattern)
      .execute();
  }
}

function details(code: string, retryable: boolean): string {
  return JSON.stringify({ code, sqlstate: null, retryable, position: null });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('query_tasks_pages_until').execute();
  for (const column of ['pages_until', 'page_rows', 'error_details']) {
    await db.schema.alterTable('query_tasks').dropColumn(column).execute();
  }
}
