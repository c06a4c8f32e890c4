import { randomUUID } from 'node:crypto';
import { DelayedError, Queue, Worker, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { AppError, isAppError, unavailable } from '../core/errors.js';
import { whenRedisReady } from '../core/redis-ready.js';
import { throttledWarn } from '../core/throttled-log.js';
import { ConnectionSlots } from './connection-slots.js';
import type { DispatchedTask, Dispatcher, TaskHandler } from './dispatcher.js';

export interface BullmqDispatcherOptions {
  /** redis://[user:password@]host:port[/db] (rediss:// for TLS). */
  redisUrl: string;
  /** Prefix of every Redis key qrun writes. Default `qrun`. */
  prefix?: string;
  /** Default `queries`. */
  queueName?: string;
  /** Tasks running at once in this process. */
  workerConcurrency: number;
  /** Tasks running at once on one connection, across all worker processes. */
  connectionConcurrency: number;
  /** Tasks of one organization running at once, across all worker processes (Infinity: no limit). */
  organizationConcurrency: number;
  /** Waiting (and parked) jobs beyond which enqueue answers 503. */
  maxQueued: number;
  /** A dead worker's connection slot frees itself after this long. */
  slotTtlSeconds: number;
  log?: Logger;
}

interface JobData {
  taskId: string;
  connectionId: string;
  /** Absent on jobs queued by a qrun from before organizations were limited: those are not. */
  organizationId?: string;
}

/** BullMQ's lowest priority (the largest number it accepts). */
const MAX_PRIORITY = 2_097_152;

/** An enqueue gives up after this long: an API request must not hang on an unreachable Redis. */
const ENQUEUE_DEADLINE_MS = 2000;
/** First delay of a job whose connection is full; doubles on each retry, up to the cap. */
const PARK_BASE_MS = 250;
/**
 * A release wakes the oldest parked job at once, so this timer is only the safety net for a wake-up lost
 * to a race; it bounds the extra latency such a loss costs while keeping a parked job's polling cheap.
 */
const PARK_MAX_MS = 2000;

const reconnect = (times: number) => Math.min(times * 200, 2000);

/**
 * Dispatch over BullMQ on Redis, for many api and worker processes. The task id is the job id, so a second
 * enqueue of a task that is still queued is a no-op; jobs are removed as soon as they finish, so a task
 * re-enqueued later (the sweeper after a Redis loss) is a new job. The metadata store's claim still decides
 * who runs a task: BullMQ only has to deliver at least once.
 *
 * The per-connection limit holds across processes through {@link ConnectionSlots}. A job whose connection is
 * full is parked (moved to BullMQ's delayed set) rather than held, so it never occupies a worker slot that
 * another connection's job could use; a release wakes the oldest parked job of its connection.
 */
export class BullmqDispatcher implements Dispatcher {
  private readonly prefix: string;
  private readonly queueName: string;
  private readonly queueRedis: Redis;
  private readonly queue: Queue<JobData>;
  private readonly log: Pick<Logger, 'warn' | 'error'> | undefined;
  private readonly warn: ReturnType<typeof throttledWarn>;
  private worker: Worker<JobData> | undefined;
  private workerRedis: Redis | undefined;
  private slotRedis: Redis | undefined;
  private slots: ConnectionSlots | undefined;
  private organizationSlots: ConnectionSlots | undefined;
  private handler: TaskHandler | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: BullmqDispatcherOptions) {
    this.prefix = options.prefix ?? 'qrun';
    this.queueName = options.queueName ?? 'queries';
    this.log = options.log;
    this.warn = throttledWarn(options.log, 'dispatch Redis error');
    // Commands fail at once while Redis is away instead of queueing behind a reconnect: enqueue is on
    // an API request's path, and a fast 503 with Retry-After beats a hung request.
    this.queueRedis = this.connect('queue', {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: ENQUEUE_DEADLINE_MS,
      commandTimeout: ENQUEUE_DEADLINE_MS,
    });
    this.queue = new Queue<JobData>(this.queueName, { connection: this.queueRedis, prefix: this.prefix });
    this.queue.on('error', (err) => this.logError('queue', err));
  }

  async enqueue(task: DispatchedTask): Promise<void> {
    if (this.closing) throw unavailable('qrun is shutting down; try again shortly.', 5);
    try {
      await withDeadline(
        whenRedisReady(this.queueRedis, ENQUEUE_DEADLINE_MS).then(() => this.add(task)),
        ENQUEUE_DEADLINE_MS,
      );
    } catch (err) {
      if (isAppError(err)) throw err;
      // A late add that lands after the deadline is harmless: the caller dropped the task, so its claim fails.
      throw new AppError(
        503,
        'unavailable',
        'Query dispatch is unavailable (its Redis cannot be reached); try again shortly.',
        { cause: err, headers: { 'retry-after': '5' } },
      );
    }
  }

  start(handler: TaskHandler): void {
    if (this.closing) throw new Error('BullmqDispatcher: start() after close()');
    if (this.worker) throw new Error('BullmqDispatcher: start() called twice');
    this.handler = handler;
    // The slot connection rides out short blips (its commands wait for a reconnect, a few times).
    this.slotRedis = this.connect('slots', { maxRetriesPerRequest: 2 });
    this.slots = new ConnectionSlots(this.slotRedis, {
      prefix: this.prefix,
      limit: this.options.connectionConcurrency,
      ttlSeconds: this.options.slotTtlSeconds,
    });
    if (Number.isFinite(this.options.organizationConcurrency)) {
      this.organizationSlots = new ConnectionSlots(this.slotRedis, {
        prefix: this.prefix,
        namespace: 'org-slots',
        limit: this.options.organizationConcurrency,
        ttlSeconds: this.options.slotTtlSeconds,
      });
    }
    // BullMQ duplicates this client for its own two connections (one of them blocks waiting for jobs),
    // and requires maxRetriesPerRequest null on them. The template itself never connects.
    this.workerRedis = this.connect('worker', { maxRetriesPerRequest: null, lazyConnect: true });
    this.worker = new Worker<JobData>(this.queueName, (job, token) => this.process(job, token), {
      connection: this.workerRedis,
      prefix: this.prefix,
      concurrency: this.options.workerConcurrency,
    });
    this.worker.on('error', (err) => this.logError('worker', err));
  }

  /** Whether enqueue can reach Redis right now (for a readiness probe). */
  get connected(): boolean {
    return this.queueRedis.status === 'ready';
  }

  /** Jobs waiting for a worker, including those parked because their connection is full. */
  async backlog(): Promise<number> {
    // Every job has a priority (see add), so waiting jobs are in BullMQ's `prioritized` set.
    return this.queue.getJobCountByTypes('waiting', 'prioritized', 'delayed');
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    // The worker first: it stops fetching and waits for running handlers, which still need the slot
    // connection (to release) and the queue (to wake parked jobs).
    await this.worker?.close().catch((err: unknown) => this.logError('worker', err));
    await this.queue.close().catch((err: unknown) => this.logError('queue', err));
    for (const redis of [this.slotRedis, this.workerRedis, this.queueRedis]) {
      if (!redis) continue;
      // QUIT lets pending replies arrive; a client that is not connected has nothing to wait for.
      if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
      else redis.disconnect();
    }
  }

  private async add(task: DispatchedTask): Promise<void> {
    // Not atomic with the add: concurrent API processes can overshoot by a few, which a backlog limit allows.
    const waiting = await this.backlog();
    if (waiting >= this.options.maxQueued) {
      throw unavailable(`The query queue is full (${this.options.maxQueued} waiting); try again shortly.`, 5);
    }
    await this.queue.add(
      'query',
      { taskId: task.taskId, connectionId: task.connectionId, organizationId: task.organizationId },
      {
        jobId: task.taskId,
        removeOnComplete: true,
        removeOnFail: true,
        // attempts 1: the runner records every failure on the task itself; BullMQ never retries.
        attempts: 1,
        // BullMQ has no queue per organization, so fairness comes from the order: a task's priority is
        // its place in its organization's line, and the n-th waiting task of every organization runs
        // before the (n+1)-th of any (equal priorities run in the order they came).
        priority: Math.min(Math.max(1, task.position), MAX_PRIORITY),
      },
    );
  }

  private async process(job: Job<JobData>, token: string | undefined): Promise<void> {
    const handler = this.handler!;
    const { taskId, connectionId, organizationId } = job.data;
    const holder = `${job.id}:${randomUUID()}`;
    // The organization's slot first, then the connection's; a job that cannot have both holds neither.
    const held: [ConnectionSlots, string][] = [];
    const limits: [ConnectionSlots | undefined, string | undefined][] = [
      [this.organizationSlots, organizationId],
      [this.slots, connectionId],
    ];
    for (const [slots, id] of limits) {
      if (!slots || id === undefined) continue;
      if (!(await slots.acquire(id, holder, job.id))) {
        for (const [s, i] of held) await this.release(s, i, holder);
        // Back to the queue for a while, freeing this worker slot for other jobs.
        await job.moveToDelayed(Date.now() + parkDelay(job.attemptsStarted), token);
        throw new DelayedError();
      }
      held.push([slots, id]);
    }

    let renewing = false;
    const renew = setInterval(() => {
      if (renewing) return;
      renewing = true;
      Promise.all(
        held.map(([slots, id]) =>
          slots.renew(id, holder).then((kept) => {
            if (!kept) this.log?.warn({ taskId, id }, 'concurrency slot lost; limit briefly exceeded');
          }),
        ),
      )
        .catch((err: unknown) => this.logError('slots', err))
        .finally(() => (renewing = false));
    }, this.slots!.renewIntervalMs);
    renew.unref();
    try {
      await handler({ taskId, connectionId, organizationId: organizationId ?? '' });
    } catch (err) {
      // The handler records its own failures; a throw here is a bug, and the job must still finish.
      this.log?.error({ err, taskId }, 'task handler threw');
    } finally {
      clearInterval(renew);
      for (const [slots, id] of held.reverse()) await this.release(slots, id, holder);
    }
  }

  /** Frees a slot and wakes the oldest job parked for it. */
  private async release(slots: ConnectionSlots, id: string, holder: string): Promise<void> {
    let waiter: string | undefined;
    try {
      waiter = await slots.release(id, holder);
    } catch (err) {
      // The slot runs out by itself after slotTtlSeconds.
      this.logError('slots', err);
      return;
    }
    if (!waiter) return;
    try {
      await this.queue.getBackend().promote(waiter);
    } catch {
      // Not delayed any more (it woke by its timer, or is being parked right now): its timer is the fallback.
    }
  }

  private connect(name: string, options: RedisOptions): Redis {
    const redis = new Redis(this.options.redisUrl, {
      retryStrategy: reconnect,
      connectionName: `${this.prefix}:${name}`,
      ...options,
    });
    redis.on('error', (err: unknown) => this.logError(name, err));
    return redis;
  }

  private logError(source: string, err: unknown): void {
    this.warn(err, source);
  }
}

/** Exponential back-off with jitter, so parked jobs of one connection do not all come back together. */
function parkDelay(attemptsStarted: number): number {
  const base = Math.min(PARK_MAX_MS, PARK_BASE_MS * 2 ** Math.min(10, Math.max(0, attemptsStarted - 1)));
  return Math.round(base * (0.75 + Math.random() * 0.25));
}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
