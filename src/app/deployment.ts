import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config, Role } from '../config/config.js';
import type { Dispatcher } from '../dispatch/dispatcher.js';
import { InProcessDispatcher } from '../dispatch/in-process-dispatcher.js';
import { LocalProgressStore, type ProgressStore } from '../events/progress-store.js';
import { LocalTaskEvents, type TaskEvents } from '../events/task-events.js';
import type { ResultStore } from '../results/result-store.js';
import { openResultStore } from '../results/results-url.js';
import { throttledWarn } from '../core/throttled-log.js';

/**
 * The deployment's moving parts, chosen from the configuration alone: in-process dispatch and wake-ups
 * without QRUN_REDIS_URL, BullMQ and Redis pub/sub with it; files or S3 by QRUN_RESULTS_URL.
 * Nothing else in the code asks which deployment it is in.
 *
 * The scale-out parts (BullMQ, ioredis) are imported only when QRUN_REDIS_URL asks for them: the
 * embedded default never loads them (docs/ARCHITECTURE.md, "Engines and scale-out parts load lazily").
 */
export async function createDispatcher(config: Config, log: Logger): Promise<Dispatcher> {
  const limits = {
    workerConcurrency: config.workerConcurrency,
    connectionConcurrency: config.connectionConcurrency,
    organizationConcurrency: config.organizationConcurrency,
    maxQueued: config.maxQueued,
  };
  if (config.redisUrl === undefined) return new InProcessDispatcher(limits);
  const { BullmqDispatcher } = await import('../dispatch/bullmq-dispatcher.js');
  return new BullmqDispatcher({
    redisUrl: config.redisUrl,
    prefix: config.redisPrefix,
    slotTtlSeconds: config.leaseSeconds,
    log,
    ...limits,
  });
}

export async function createTaskEvents(config: Config, log: Logger): Promise<TaskEvents> {
  if (config.redisUrl === undefined) return new LocalTaskEvents();
  const { RedisTaskEvents } = await import('../events/redis-task-events.js');
  return new RedisTaskEvents({ redisUrl: config.redisUrl, prefix: config.redisPrefix, log });
}

/**
 * Running queries' progress: in this process's memory without QRUN_REDIS_URL, a Redis hash per task
 * (`<prefix>:progress:<task id>`) with it. An entry outlives its last write by three lease periods, and
 * the runner writes it at least once a lease third (every page and every heartbeat).
 */
export async function createProgressStore(config: Config, log: Logger): Promise<ProgressStore> {
  if (config.redisUrl === undefined) return new LocalProgressStore();
  const { RedisProgressStore } = await import('../events/redis-progress-store.js');
  return new RedisProgressStore({
    redisUrl: config.redisUrl,
    prefix: config.redisPrefix,
    ttlMs: 3 * config.leaseSeconds * 1000,
    log,
  });
}

/**
 * The Redis client the HTTP rate limit counts on, so the limit holds across api processes; undefined in
 * the embedded default (each process counts in memory) and for workers, which serve no API. Commands fail
 * at once while Redis is away (no offline queue, a short timeout): the limit then lets requests through
 * (see src/http/plugins/rate-limit.ts) rather than holding every API request behind a reconnect.
 */
export async function createRateLimitRedis(
  config: Config,
  log: Logger,
  role: Role,
): Promise<Redis | undefined> {
  if (config.redisUrl === undefined || role === 'worker' || config.rateLimitPerMinute === 0) return undefined;
  const { Redis } = await import('ioredis');
  const warn = throttledWarn(log, 'rate limit: Redis connection error');
  const redis = new Redis(config.redisUrl, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 1000,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    connectionName: `${config.redisPrefix}:rate-limit`,
  });
  redis.on('error', (err: unknown) => warn(err));
  return redis;
}

export function createResultStore(config: Config): ResultStore {
  return openResultStore(
    config.resultsUrl,
    { endpoint: config.s3Endpoint, region: config.s3Region, forcePathStyle: config.s3ForcePathStyle },
    { minFreeBytes: config.minFreeBytes },
  );
}
