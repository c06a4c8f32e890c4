import type { Logger } from 'pino';
import { isoAfter, nowIso } from '../core/time.js';
import type { Dispatcher } from '../dispatch/dispatcher.js';
import type { TaskEvents } from '../events/task-events.js';
import type { ResultStore } from '../results/result-store.js';
import type { IdempotencyKeysRepository } from '../store/repositories/idempotency-keys.js';
import type { QueryTasksRepository } from '../store/repositories/query-tasks.js';

export const LOST_MESSAGE =
  'lost: the worker running this query stopped before it finished (crash or restart); its result was lost. Submit it again.';
export const EXPIRED_MESSAGE = 'expired: the result was kept for its retention period and has been deleted.';

const BATCH = 500;
const STRANDED_AFTER_MS = 15_000;

export interface SweeperOptions {
  intervalSeconds: number;
  resultTtlSeconds: number;
}

/**
 * Periodic housekeeping. Every step is a conditional update on the task's current state, so any number
 * of processes may sweep at once without doing harm.
 * - leases: running tasks whose lease ran out (their worker died) become `unknown`, pages deleted;
 * - retention: done tasks past `expires` lose their pages and read `unknown`;
 * - stranded: tasks still `created` are enqueued again (a lost enqueue, a restart);
 * - idempotency records older than 24 h are dropped.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;

  constructor(
    private readonly deps: {
      tasks: QueryTasksRepository;
      idempotency: IdempotencyKeysRepository;
      results: ResultStore;
      events: TaskEvents;
      dispatcher: Dispatcher | undefined;
      log: Logger;
    },
    private readonly options: SweeperOptions,
  ) {}

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
    await this.redispatchCreated(nowIso());
    return lost;
  }

  sweepOnce(): Promise<void> {
    this.sweeping ??= this.sweep().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweep(): Promise<void> {
    const { tasks, idempotency, results, log } = this.deps;
    try {
      const now = nowIso();
      for (const t of await tasks.listLeaseExpired(now, BATCH)) await this.markLost(t.id, t.worker_id);
      for (const id of await tasks.listExpiredDone(now, BATCH)) {
        await results.deleteResult(id);
        await tasks.markExpired(id, EXPIRED_MESSAGE);
      }
      await idempotency.deleteExpired(now);
      // A task still waiting after this long may have lost its queue entry (a Redis restart, a crash
      // between insert and enqueue); younger ones are simply queued, and re-adding them is wasted work.
      await this.redispatchCreated(isoAfter(now, -STRANDED_AFTER_MS));
    } catch (err) {
      log.error({ err }, 'sweep failed; will try again');
    }
  }

  private async markLost(id: string, workerId: string | null): Promise<boolean> {
    const now = nowIso();
    const marked = await this.deps.tasks.markLost(
      id,
      workerId,
      LOST_MESSAGE,
      now,
      isoAfter(now, this.options.resultTtlSeconds * 1000),
    );
    if (marked) {
      await this.deps.results.deleteResult(id);
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
