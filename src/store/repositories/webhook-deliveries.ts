import type { Db } from '../database.js';
import type { QueryTasksTable, WebhookDeliveriesTable } from '../schema.js';

export type WebhookDeliveryRow = WebhookDeliveriesTable;

/** What a delivery is made from: the task as it ended. */
export type EndedTask = Pick<
  QueryTasksTable,
  'id' | 'organization_id' | 'status' | 'row_count' | 'error' | 'finished_at'
> & { callback_url: string | null };

/**
 * The durable queue of callback deliveries (src/worker/webhook-deliverer.ts works through it). Keyed by
 * task id, so recording the same ended task twice (the process that ended it, and the delivery loop's
 * look for ended tasks without a row) is one delivery. Every change after the insert is conditional on
 * the attempt count the caller saw, so two processes never both run, or both record, one attempt.
 */
export class WebhookDeliveriesRepository {
  constructor(private readonly db: Db) {}

  /** The task's outcome and callback; undefined when the task does not exist. */
  async endedTask(taskId: string): Promise<EndedTask | undefined> {
    const row = await this.db
      .selectFrom('query_tasks')
      .select(['id', 'organization_id', 'status', 'row_count', 'error', 'finished_at', 'callback_url'])
      .where('id', '=', taskId)
      .executeTakeFirst();
    return row === undefined ? undefined : { ...row, callback_url: row.callback_url ?? null };
  }

  /** Adds a delivery unless the task already has one; true when this call added it. */
  async insert(row: Omit<WebhookDeliveryRow, 'attempts' | 'last_error' | 'finished_at'>): Promise<boolean> {
    const r = await this.db
      .insertInto('webhook_deliveries')
      .values({ ...row, attempts: 0, last_error: null, finished_at: null })
      .onConflict((oc) => oc.column('task_id').doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  /**
   * Tasks that ended since `since` with a callback and no delivery row: a process that stopped between
   * recording a task's end and adding its delivery. Oldest first.
   */
  async listEndedWithoutDelivery(since: string, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('query_tasks')
      .select('id')
      .where('callback_url', 'is not', null)
      .where('finished_at', '>=', since)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('webhook_deliveries')
              .select('webhook_deliveries.task_id')
              .whereRef('webhook_deliveries.task_id', '=', 'query_tasks.id'),
          ),
        ),
      )
      .orderBy('finished_at')
      .limit(limit)
      .execute();
    return rows.map((r) => r.id);
  }

  /** Pending deliveries whose next attempt is due, the longest waiting first. */
  listDue(now: string, limit: number): Promise<Pick<WebhookDeliveryRow, 'task_id' | 'attempts'>[]> {
    return this.db
      .selectFrom('webhook_deliveries')
      .select(['task_id', 'attempts'])
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', now)
      .orderBy('next_attempt_at')
      .orderBy('task_id')
      .limit(limit)
      .execute();
  }

  /**
   * Takes attempt number `seenAttempts + 1` for this process: counts it and moves the next attempt to
   * `claimUntil` (past the attempt's own timeout), only if the delivery is still pending, due, and at the
   * count the caller saw. Returns the row as claimed, or undefined when another process got it first.
   */
  async claim(
    taskId: string,
    seenAttempts: number,
    now: string,
    claimUntil: string,
  ): Promise<WebhookDeliveryRow | undefined> {
    const r = await this.db
      .updateTable('webhook_deliveries')
      .set({ attempts: seenAttempts + 1, next_attempt_at: claimUntil })
      .where('task_id', '=', taskId)
      .where('status', '=', 'pending')
      .where('attempts', '=', seenAttempts)
      .where('next_attempt_at', '<=', now)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return undefined;
    return this.find(taskId);
  }

  /** A 2xx answered attempt `attempt`. */
  async recordDelivered(taskId: string, attempt: number, now: string): Promise<boolean> {
    const r = await this.db
      .updateTable('webhook_deliveries')
      .set({ status: 'delivered', last_error: null, finished_at: now })
      .where('task_id', '=', taskId)
      .where('status', '=', 'pending')
      .where('attempts', '=', attempt)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Attempt `attempt` failed: try again at `nextAttemptAt`, or give up (`failed`) when that is undefined. */
  async recordFailed(
    taskId: string,
    attempt: number,
    error: string,
    now: string,
    nextAttemptAt: string | undefined,
  ): Promise<boolean> {
    const r = await this.db
      .updateTable('webhook_deliveries')
      .set(
        nextAttemptAt === undefined
          ? { status: 'failed', last_error: error, finished_at: now }
          : { last_error: error, next_attempt_at: nextAttemptAt },
      )
      .where('task_id', '=', taskId)
      .where('status', '=', 'pending')
      .where('attempts', '=', attempt)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Retention: delivered and abandoned deliveries that finished before `before`. */
  async deleteFinished(before: string, limit: number): Promise<number> {
    const r = await this.db
      .deleteFrom('webhook_deliveries')
      .where('task_id', 'in', (eb) =>
        eb
          .selectFrom('webhook_deliveries')
          .select('task_id')
          .where('status', '!=', 'pending')
          .where('finished_at', '<', before)
          .limit(limit),
      )
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  find(taskId: string): Promise<WebhookDeliveryRow | undefined> {
    return this.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('task_id', '=', taskId)
      .executeTakeFirst();
  }
}
