import { sql } from 'kysely';
import type { Db } from '../database.js';
import type { ErrorDetails, TaskStatus } from '../../core/task-status.js';
import type { QueryTasksTable } from '../schema.js';

export type QueryTaskRow = QueryTasksTable;

/**
 * A task as status reads see it: every column but the SQL and its parameters (up to a MiB each), and
 * the page size and page-deletion mark, which only the worker and the sweeper need. Reads that can come
 * in thousands (status polls, long-polls, page reads, the finished-task cache) never load them.
 */
export type QueryTaskView = Omit<QueryTaskRow, 'sql' | 'parameters' | 'page_rows' | 'pages_until'>;

/** One entry of the caller's query list: the view, and the SQL cut to `LIST_SQL_PREVIEW` characters plus one. */
export type QueryTaskListItem = QueryTaskView & { sql_preview: string };

const VIEW_COLUMNS = [
  'id',
  'organization_id',
  'owner',
  'connection_id',
  'timeout_seconds',
  'max_rows',
  'status',
  'error',
  'error_details',
  'fields',
  'schema',
  'row_count',
  'page_count',
  'truncated',
  'worker_id',
  'lease_expires_at',
  'cancel_requested',
  'created_at',
  'started_at',
  'finished_at',
  'expires_at',
] as const satisfies readonly (keyof QueryTaskView)[];

/** Characters of SQL a list entry carries; one more is read, to know whether it was cut. */
export const LIST_SQL_PREVIEW = 1000;

export interface FinishDone {
  fields: string[];
  schema: { name: string; type: string }[];
  rowCount: number;
  pageCount: number;
  truncated: boolean;
  finishedAt: string;
  expiresAt: string;
}

/**
 * The query task table. Every state change is a conditional UPDATE on the expected current state
 * (and, for running tasks, the worker holding the lease), so two processes can never both win.
 */
export class QueryTasksRepository {
  constructor(private readonly db: Db) {}

  async insert(row: QueryTaskRow): Promise<void> {
    await this.db.insertInto('query_tasks').values(row).execute();
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom('query_tasks').where('id', '=', id).execute();
  }

  /** The whole row, SQL and parameters included: for the worker that runs it. */
  find(id: string): Promise<QueryTaskRow | undefined> {
    return this.db.selectFrom('query_tasks').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** The row without SQL and parameters: for status reads. */
  findView(id: string): Promise<QueryTaskView | undefined> {
    return this.db.selectFrom('query_tasks').select(VIEW_COLUMNS).where('id', '=', id).executeTakeFirst();
  }

  /** The caller's queries, newest first, after an optional (created_at, id) cursor. */
  async listByOwner(
    owner: string,
    limit: number,
    after?: { createdAt: string; id: string },
  ): Promise<QueryTaskListItem[]> {
    let q = this.db
      .selectFrom('query_tasks')
      .select(VIEW_COLUMNS)
      // substr counts characters on both SQLite and PostgreSQL.
      .select(sql<string>`substr(sql, 1, ${LIST_SQL_PREVIEW + 1})`.as('sql_preview'))
      .where('owner', '=', owner);
    if (after) {
      q = q.where((eb) =>
        eb.or([
          eb('created_at', '<', after.createdAt),
          eb.and([eb('created_at', '=', after.createdAt), eb('id', '<', after.id)]),
        ]),
      );
    }
    return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
  }

  /** An organization's queries waiting (`created`) and running: its share of the queue. */
  async countUnfinished(organizationId: string): Promise<{ created: number; running: number }> {
    const rows = await this.db
      .selectFrom('query_tasks')
      .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('organization_id', '=', organizationId)
      .where('status', 'in', ['created', 'running'])
      .groupBy('status')
      .execute();
    const count = (status: TaskStatus) => Number(rows.find((r) => r.status === status)?.n ?? 0);
    return { created: count('created'), running: count('running') };
  }

  /**
   * `queue_position`: how many of the organization's tasks still waiting (`created`) were submitted before
   * this one. Dispatch serves an organization's tasks in the order they came (round robin between
   * organizations), so these run first; other organizations' tasks are not counted.
   */
  async countWaitingAhead(
    task: Pick<QueryTaskRow, 'organization_id' | 'created_at' | 'id'>,
  ): Promise<number> {
    const r = await this.db
      .selectFrom('query_tasks')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('organization_id', '=', task.organization_id)
      .where('status', '=', 'created')
      .where((eb) =>
        eb.or([
          eb('created_at', '<', task.created_at),
          eb.and([eb('created_at', '=', task.created_at), eb('id', '<', task.id)]),
        ]),
      )
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** Tasks waiting to run since before a point in time, oldest first: re-dispatched after a restart or a lost enqueue. */
  async listCreated(
    limit: number,
    createdBefore: string,
  ): Promise<Pick<QueryTaskRow, 'id' | 'connection_id' | 'organization_id'>[]> {
    return this.db
      .selectFrom('query_tasks')
      .select(['id', 'connection_id', 'organization_id'])
      .where('status', '=', 'created')
      .where('created_at', '<', createdBefore)
      .orderBy('created_at')
      .orderBy('id')
      .limit(limit)
      .execute();
  }

  /** created → running, for exactly one worker. False when someone else got there first (or it was canceled). */
  async claim(id: string, workerId: string, now: string, leaseUntil: string): Promise<boolean> {
    const r = await this.db
      .updateTable('query_tasks')
      .set({ status: 'running', worker_id: workerId, started_at: now, lease_expires_at: leaseUntil })
      .where('id', '=', id)
      .where('status', '=', 'created')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /**
   * Extends the lease while the worker still holds it. Returns whether it still does, and whether a cancel
   * was requested (the request may have come through another process).
   */
  async renewLease(
    id: string,
    workerId: string,
    leaseUntil: string,
  ): Promise<{ held: boolean; cancelRequested: boolean }> {
    const r = await this.db
      .updateTable('query_tasks')
      .set({ lease_expires_at: leaseUntil })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .where('worker_id', '=', workerId)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return { held: false, cancelRequested: false };
    const row = await this.db
      .selectFrom('query_tasks')
      .select('cancel_requested')
      .where('id', '=', id)
      .executeTakeFirst();
    return { held: true, cancelRequested: Number(row?.cancel_requested ?? 0) === 1 };
  }

  async finishDone(id: string, workerId: string, done: FinishDone): Promise<boolean> {
    const r = await this.db
      .updateTable('query_tasks')
      .set({
        status: 'done',
        error: null,
        fields: JSON.stringify(done.fields),
        schema: JSON.stringify(done.schema),
        row_count: done.rowCount,
        page_count: done.pageCount,
        truncated: done.truncated ? 1 : 0,
        finished_at: done.finishedAt,
        expires_at: done.expiresAt,
        pages_until: done.expiresAt,
        lease_expires_at: null,
      })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .where('worker_id', '=', workerId)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async finishFailed(
    id: string,
    workerId: string,
    error: string,
    details: ErrorDetails,
    finishedAt: string,
    expiresAt: string,
  ): Promise<boolean> {
    const r = await this.db
      .updateTable('query_tasks')
      .set({
        status: 'failed',
        error,
        error_details: JSON.stringify(details),
        finished_at: finishedAt,
        expires_at: expiresAt,
        lease_expires_at: null,
      })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .where('worker_id', '=', workerId)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** A task canceled before any worker claimed it ends here, never having run. */
  async cancelCreated(
    id: string,
    error: string,
    details: ErrorDetails,
    finishedAt: string,
    expiresAt: string,
  ): Promise<boolean> {
    const r = await this.db
      .updateTable('query_tasks')
      .set({
        status: 'failed',
        error,
        error_details: JSON.stringify(details),
        finished_at: finishedAt,
        expires_at: expiresAt,
      })
      .where('id', '=', id)
      .where('status', '=', 'created')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async requestCancel(id: string): Promise<boolean> {
    const r = await this.db
      .updateTable('query_tasks')
      .set({ cancel_requested: 1 })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Running tasks whose lease ran out: their worker died. */
  async listLeaseExpired(now: string, limit: number): Promise<Pick<QueryTaskRow, 'id' | 'worker_id'>[]> {
    return this.db
      .selectFrom('query_tasks')
      .select(['id', 'worker_id'])
      .where('status', '=', 'running')
      .where('lease_expires_at', '<', now)
      .limit(limit)
      .execute();
  }

  /** Every running task: at start-up of the single embedded process, none of them can still be alive. */
  async listRunning(limit: number): Promise<Pick<QueryTaskRow, 'id' | 'worker_id'>[]> {
    return this.db
      .selectFrom('query_tasks')
      .select(['id', 'worker_id'])
      .where('status', '=', 'running')
      .limit(limit)
      .execute();
  }

  /** running → failed (lost), only if it is still the same worker's (a late finish must not be overwritten). */
  async markLost(
    id: string,
    workerId: string | null,
    error: string,
    details: ErrorDetails,
    now: string,
    expiresAt: string,
  ): Promise<boolean> {
    let q = this.db
      .updateTable('query_tasks')
      .set({
        status: 'failed',
        error,
        error_details: JSON.stringify(details),
        finished_at: now,
        expires_at: expiresAt,
        lease_expires_at: null,
      })
      .where('id', '=', id)
      .where('status', '=', 'running');
    q = workerId === null ? q.where('worker_id', 'is', null) : q.where('worker_id', '=', workerId);
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Done tasks past their expiry whose pages are still to be deleted (by the pages_until index). */
  async listPagesDue(now: string, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('query_tasks')
      .select('id')
      .where('pages_until', '<', now)
      .limit(limit)
      .execute();
    return rows.map((r) => r.id);
  }

  /** The pages of an expired result are gone (or queued for deletion): the task stays `done`, past `expires`. */
  async markPagesDeleted(id: string): Promise<void> {
    await this.db.updateTable('query_tasks').set({ pages_until: null }).where('id', '=', id).execute();
  }

  /**
   * Retention: deletes up to `limit` finished tasks, SQL and parameters with them, whose result expired
   * before `expiredBefore`. Only those without pages left to delete (pages_until null): a `done` task's
   * pages go first, at expiry, so no row is deleted while it still names live pages.
   */
  async deleteRetired(expiredBefore: string, limit: number): Promise<number> {
    // PostgreSQL has no DELETE … LIMIT: the batch is chosen by a subquery.
    const r = await this.db
      .deleteFrom('query_tasks')
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('query_tasks')
          .select('id')
          .where('status', 'in', ['done', 'failed'])
          .where('expires_at', '<', expiredBefore)
          .where('pages_until', 'is', null)
          .limit(limit),
      )
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  /** Which of these ids have a task row (the orphan sweep keeps their pages). */
  async existingIds(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.db.selectFrom('query_tasks').select('id').where('id', 'in', ids).execute();
    return new Set(rows.map((r) => r.id));
  }

  async countByStatus(status: TaskStatus): Promise<number> {
    const r = await this.db
      .selectFrom('query_tasks')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', status)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }
}
