import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { whenRedisReady } from '../core/redis-ready.js';
import { throttledWarn } from '../core/throttled-log.js';
import type { ProgressStore, TaskProgress } from './progress-store.js';

export interface RedisProgressStoreOptions {
  redisUrl: string;
  /** QRUN_REDIS_PREFIX. Keys are `<prefix>:progress:<task id>`. */
  prefix?: string;
  /**
   * An entry not written again for this long disappears (the runner rewrites it at every page and every
   * lease heartbeat, so only a dead worker's entry runs out).
   */
  ttlMs: number;
  log?: Logger;
}

/** How long a read waits for a connection still being made; beyond it the answer has no progress. */
const READ_WAIT_MS = 500;

/**
 * Across processes: one Redis hash per running task, `<prefix>:progress:<task id>` with fields `rows`,
 * `pages` and `bytes`, and a TTL. Writes are one pipelined HSET + PEXPIRE, sent without waiting for the
 * reply, in order on one connection (so a reader never sees the count go back); while Redis is away they
 * are dropped (no offline queue), and a read answers undefined at once.
 */
export class RedisProgressStore implements ProgressStore {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly warn: ReturnType<typeof throttledWarn>;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: RedisProgressStoreOptions) {
    this.prefix = `${options.prefix ?? 'qrun'}:progress:`;
    this.warn = throttledWarn(
      options.log,
      'progress Redis error; running queries show no progress until it is back',
    );
    this.redis = new Redis(options.redisUrl, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 1000,
      retryStrategy: (times) => Math.min(times * 200, 2000),
      connectionName: `${options.prefix ?? 'qrun'}:progress`,
    });
    this.redis.on('error', (err: unknown) => this.warn(err));
  }

  set(taskId: string, progress: TaskProgress): void {
    if (this.closing || this.redis.status !== 'ready') return;
    const key = this.prefix + taskId;
    this.redis
      .pipeline()
      .hset(key, 'rows', progress.rows, 'pages', progress.pages, 'bytes', progress.bytes)
      .pexpire(key, this.options.ttlMs)
      .exec()
      .catch((err: unknown) => this.warn(err));
  }

  async get(taskId: string): Promise<TaskProgress | undefined> {
    if (this.closing) return undefined;
    try {
      await whenRedisReady(this.redis, READ_WAIT_MS);
      const hash = await this.redis.hgetall(this.prefix + taskId);
      if (hash.rows === undefined) return undefined;
      return { rows: Number(hash.rows), pages: Number(hash.pages ?? 0), bytes: Number(hash.bytes ?? 0) };
    } catch (err) {
      this.warn(err);
      return undefined;
    }
  }

  delete(taskId: string): void {
    if (this.closing || this.redis.status !== 'ready') return;
    this.redis.del(this.prefix + taskId).catch((err: unknown) => this.warn(err));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.redis.status === 'ready') await this.redis.quit().catch(() => this.redis.disconnect());
      else this.redis.disconnect();
    })();
    return this.closing;
  }
}
