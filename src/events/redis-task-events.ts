import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { whenRedisReady } from '../core/redis-ready.js';
import { throttledWarn } from '../core/throttled-log.js';
import { LocalTaskEvents, type TaskEvents } from './task-events.js';

export interface RedisTaskEventsOptions {
  /** redis://[user:password@]host:port[/db] (rediss:// for TLS). */
  redisUrl: string;
  /** Channel prefix shared by every process of one deployment. Default `qrun`. */
  prefix?: string;
  log?: Logger;
}

/** How long a publish waits for a connection that is still being made before giving up on the hint. */
const PUBLISH_WAIT_MS = 500;

const reconnect = (times: number) => Math.min(times * 200, 2000);

/**
 * Wake-ups across processes over Redis pub/sub: `<prefix>:finished` and `<prefix>:cancel`, each message a
 * task id, and `<prefix>:identity` (keys or users changed; no payload). Every process subscribes to all
 * three and fans messages out to local listeners, so a long-poll in one
 * api process hears of a task finished by any worker, and the worker running a task hears a cancel sent
 * through any api process.
 *
 * A message is only ever a latency hint, as with LocalTaskEvents: the metadata store stays the truth and
 * every waiter re-reads it (long-polls have their own deadline, runners their lease heartbeat, which also
 * carries cancel requests). Pub/sub is fire-and-forget, so a message sent while a subscriber is
 * reconnecting is lost; that costs time, never correctness. For the same reason a publish never waits out
 * an outage: it rejects within about a second, and callers catch and log.
 */
export class RedisTaskEvents implements TaskEvents {
  /** Delivers what the subscriber hears to this process's listeners. */
  private readonly local = new LocalTaskEvents();
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private readonly finishedChannel: string;
  private readonly cancelChannel: string;
  private readonly identityChannel: string;
  private readonly subscribed: Promise<void>;
  private readonly warn: ReturnType<typeof throttledWarn>;
  private closing: Promise<void> | undefined;

  constructor(options: RedisTaskEventsOptions) {
    const prefix = options.prefix ?? 'qrun';
    this.finishedChannel = `${prefix}:finished`;
    this.cancelChannel = `${prefix}:cancel`;
    this.identityChannel = `${prefix}:identity`;
    this.warn = throttledWarn(options.log, 'task events Redis error; wake-ups are delayed until it is back');

    // No offline queue: a publish while Redis is away fails at once instead of piling up behind a reconnect.
    this.publisher = new Redis(options.redisUrl, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 1000,
      retryStrategy: reconnect,
      connectionName: `${prefix}:events-pub`,
    });
    // The subscriber waits for Redis as long as it takes, and ioredis subscribes again after each reconnect.
    this.subscriber = new Redis(options.redisUrl, {
      maxRetriesPerRequest: null,
      retryStrategy: reconnect,
      connectionName: `${prefix}:events-sub`,
    });
    this.publisher.on('error', (err: unknown) => this.logError('publisher', err));
    this.subscriber.on('error', (err: unknown) => this.logError('subscriber', err));
    this.subscriber.on('message', (channel: string, taskId: string) => {
      if (channel === this.finishedChannel) void this.local.publishFinished(taskId);
      else if (channel === this.cancelChannel) void this.local.publishCancel(taskId);
      else if (channel === this.identityChannel) void this.local.publishIdentityChanged();
    });
    this.subscribed = this.subscriber
      .subscribe(this.finishedChannel, this.cancelChannel, this.identityChannel)
      .then(() => undefined);
    // Callers that never await ready() must not see an unhandled rejection (close() before connecting).
    this.subscribed.catch(() => undefined);
  }

  /** Resolves once this process hears messages. Optional: listeners work before, they just miss earlier ones. */
  ready(): Promise<void> {
    return this.subscribed;
  }

  publishFinished(taskId: string): Promise<void> {
    return this.publish(this.finishedChannel, taskId);
  }

  publishCancel(taskId: string): Promise<void> {
    return this.publish(this.cancelChannel, taskId);
  }

  publishIdentityChanged(): Promise<void> {
    return this.publish(this.identityChannel, '');
  }

  onFinished(taskId: string, listener: () => void): () => void {
    return this.local.onFinished(taskId, listener);
  }

  onIdentityChanged(listener: () => void): () => void {
    return this.local.onIdentityChanged(listener);
  }

  onCancel(listener: (taskId: string) => void): () => void {
    return this.local.onCancel(listener);
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.local.close();
    for (const redis of [this.subscriber, this.publisher]) {
      if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
      else redis.disconnect();
    }
  }

  private async publish(channel: string, taskId: string): Promise<void> {
    if (this.closing) throw new Error('Task events are closed.');
    // A wake-up that cannot go out soon is dropped: it is only a hint.
    await whenRedisReady(this.publisher, PUBLISH_WAIT_MS);
    await this.publisher.publish(channel, taskId);
  }

  private logError(source: string, err: unknown): void {
    this.warn(err, source);
  }
}
