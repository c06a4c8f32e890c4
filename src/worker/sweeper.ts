import type { Logger } from 'pino';
import { LOST_MESSAGE, qrunErrorDetails } from '../core/task-status.js';
import { isoAfter, nowIso } from '../core/time.js';
import type { Dispatcher } from '../dispatch/dispatcher.js';
import type { TaskEvents } from '../events/task-events.js';
import type { ResultStore } from '../results/result-store.js';
import type { IdempotencyKeysRepository } from '../store/repositories/idempotency-keys.js';
import type { PageDeletionsRepository } from '../store/repositories/page-deletions.js';
import type { QueryTasksRepository } from '../store/repositories/query-tasks.js';
import { deletePages, errorText } from './page-cleanup.js';

const BATCH = 500;
const STRANDED_AFTER_MS = 15_000;
const DAY_MS = 86_400_000;
/** Task rows deleted per sweep by retention: one statement, so a backlog goes at 1000 rows a sweep. */
const RETIRED_PER_SWEEP = 1000;
/** Queued page deletions tried per sweep: each is a delete in the result store (two requests on S3). */
const PAGE_DELETIONS_PER_SWEEP = 200;
/** Result ids the orphan pass looks at per sweep: one listing and one metadata query. */
const ORPHAN_BATCH = 1000;

export interface SweeperOptions {
  intervalSeconds: number;
  resultTtlSeconds: number;
  /** Finished task rows, SQL and parameters included, are deleted this many days after their result expired. */
  taskRetentionDays: number;
  /** A pass over the whole result store for pages no task owns starts at most this often; 0: every sweep. */
  orphanSweepIntervalSeconds: number;
  /** Result ids looked at per sweep by the orphan pass. Default 1000. */
  orphanBatch?: number;
  /** The clock (RFC 3339 text, as the store keeps times). Default: the real one. */
  now?: () => string;
}

/**
 * Periodic housekeeping. Every step is a conditional update on the task's current state, so any number
 * of processes may sweep at once without doing harm.
 * - leases: running tasks whose lease ran out (their worker died) end `failed` (code `lost`), pages deleted;
 * - expiry: done tasks past `expires` lose their pages (they stay `done`; the API answers 404 `expired`);
 * - stranded: tasks still `created` are enqueued again (a lost enqueue, a restart);
 * - idempotency records older than 24 h are dropped;
 * - page deletions that failed, or were queued by an organization's deletion, are tried again;
 * - task retention: finished task rows go `taskRetentionDays` after their result expired;
 * - orphans: a pass over the result store, a batch per sweep, deletes results that have no task row;
 * - connection checks: due periodic connection checks are claimed and started (src/worker/connection-health.ts).
 * A step that fails is logged and tried again at the next sweep; the other steps still run.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private readonly now: () => string;
  /** The orphan pass under way: the last id it looked at (undefined before the first batch). */
  private orphanPass: { after: string | undefined } | undefined;
  /** When the next orphan pass may start; undefined: at the next sweep. */
  private nextOrphanPass: string | undefined;

  constructor(
    private readonly deps: {
      tasks: QueryTasksRepository;
      idempotency: IdempotencyKeysRepository;
      pageDeletions: PageDeletionsRepository;
      results: ResultStore;
      events: TaskEvents;
      dispatcher: Dispatcher | undefined;
      log: Logger;
      /** The periodic connection checks (`healthcheck_interval`): started at every sweep, run beside it. */
      connectionChecks?: { startDue(): Promise<void> };
      /** Called once a lost task's end is recorded: adds its callback delivery. Never throws. */
      taskEnded?: (taskId: string) => Promise<void>;
    },
    private readonly options: SweeperOptions,
  ) {
    this.now = options.now ?? nowIso;
  }

  start(): void {
    this.timer = setInterval(() => void this.sweepOnce(), this.options.intervalSeconds * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.sweeping;
  }

  /**
   * At start-up of a process that is the only worker (the embedded default), no task can still be
   * running anywhere: mark them lost at once instead of waiting for their leases.
   */
  async recoverAfterRestart(): Promise<number> {
    const { tasks } = this.deps;
    let lost = 0;
    for (const t of await tasks.listRunning(10_000)) {
      if (await this.markLost(t.id, t.worker_id)) lost++;
    }
    await this.redispatchCreated(this.now());
    return lost;
  }

  sweepOnce(): Promise<void> {
    this.sweeping ??= this.sweep().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweep(): Promise<void> {
    const { tasks, idempotency } = this.deps;
    const now = this.now();
    await this.step('leases', async () => {
      for (const t of await tasks.listLeaseExpired(now, BATCH)) await this.markLost(t.id, t.worker_id);
    });
    // Before expiry, so that deletions failing there wait at least one interval for their retry.
    await this.step('page deletions', () => this.retryPageDeletions());
    await this.step('expiry', async () => {
      for (const id of await tasks.listPagesDue(now, BATCH)) {
        // A delete that fails is queued for retry: the result still expires now, as promised.
        await deletePages(this.deps, id);
        await tasks.markPagesDeleted(id);
      }
    });
    await this.step('idempotency', () => idempotency.deleteExpired(now));
    // A task still waiting after this long may have lost its queue entry (a Redis restart, a crash
    // between insert and enqueue); younger ones are simply queued, and re-adding them is wasted work.
    await this.step('re-dispatch', () => this.redispatchCreated(isoAfter(now, -STRANDED_AFTER_MS)));
    await this.step('retention', async () => {
      const before = isoAfter(now, -this.options.taskRetentionDays * DAY_MS);
      const deleted = await tasks.deleteRetired(before, RETIRED_PER_SWEEP);
      if (deleted > 0) this.deps.log.info({ deleted }, 'deleted task rows past their retention');
    });
    await this.step('orphans', () => this.sweepOrphans(now));
    await this.step('connection checks', async () => this.deps.connectionChecks?.startDue());
  }

  private async step(name: string, work: () => Promise<unknown>): Promise<void> {
    try {
      await work();
    } catch (err) {
      this.deps.log.error({ err, step: name }, 'sweep step failed; will try again');
    }
  }

  /** Tries the queued page deletions, least tried first; a success forgets the row, a failure counts. */
  private async retryPageDeletions(): Promise<void> {
    const { pageDeletions, results, log } = this.deps;
    let failed = 0;
    let lastError: string | undefined;
    for (const { query_id: id } of await pageDeletions.listDue(PAGE_DELETIONS_PER_SWEEP)) {
      try {
        await results.deleteResult(id);
      } catch (err) {
        failed++;
        lastError = errorText(err);
        await pageDeletions.recordAttemptFailed(id, lastError);
        continue;
      }
      await pageDeletions.remove(id);
    }
    if (failed > 0) log.warn({ failed, lastError }, 'page deletions failed again; will retry');
  }

  /**
   * One batch of the orphan pass: results in the store whose id has no task row (a crash between a
   * page write and the row's end, a failed delete whose queueing failed too, pages written after their
   * organization was deleted). Pages are only written for a task whose row exists, and a row exists
   * until its pages are gone or queued, so "no row" means nobody will ever read or delete them.
   */
  private async sweepOrphans(now: string): Promise<void> {
    const { tasks, results, log } = this.deps;
    if (this.orphanPass === undefined) {
      if (this.nextOrphanPass !== undefined && now < this.nextOrphanPass) return;
      this.orphanPass = { after: undefined };
      this.nextOrphanPass = isoAfter(now, this.options.orphanSweepIntervalSeconds * 1000);
    }
    const batch = this.options.orphanBatch ?? ORPHAN_BATCH;
    const ids = await results.listResultIds(this.orphanPass.after, batch);
    // A short batch is the end of the store: the pass is over.
    this.orphanPass = ids.length < batch ? undefined : { after: ids.at(-1) };
    const owned = await tasks.existingIds(ids);
    let deleted = 0;
    for (const id of ids) {
      if (owned.has(id)) continue;
      // Asked again right before the delete, in case a row appeared since the batch was looked up.
      if ((await tasks.existingIds([id])).size > 0) continue;
      if (await deletePages(this.deps, id)) deleted++;
    }
    if (deleted > 0) log.warn({ deleted }, 'deleted results that no task owned');
  }

  private async markLost(id: string, workerId: string | null): Promise<boolean> {
    const now = this.now();
    const marked = await this.deps.tasks.markLost(
      id,
      workerId,
      LOST_MESSAGE,
      qrunErrorDetails('lost'),
      now,
      isoAfter(now, this.options.resultTtlSeconds * 1000),
    );
    if (marked) {
      await deletePages(this.deps, id);
      await this.deps.taskEnded?.(id);
      // Only a latency hint for long-polls; losing it to a Redis outage must not stop the sweep.
      await this.deps.events.publishFinished(id).catch(() => undefined);
      this.deps.log.warn({ taskId: id, workerId }, 'task lost with its worker');
    }
    return marked;
  }

  private async redispatchCreated(createdBefore: string): Promise<void> {
    const { dispatcher, tasks } = this.deps;
    if (!dispatcher) return;
    // Oldest first, so each organization's tasks get their positions in the order they came.
    const positions = new Map<string, number>();
    for (const t of await tasks.listCreated(BATCH, createdBefore)) {
      const position = (positions.get(t.organization_id) ?? 0) + 1;
      positions.set(t.organization_id, position);
      try {
        await dispatcher.enqueue({
          taskId: t.id,
          connectionId: t.connection_id,
          organizationId: t.organization_id,
          position,
        });
      } catch {
        return; // queue full or down: the next sweep tries again
      }
    }
  }
}
