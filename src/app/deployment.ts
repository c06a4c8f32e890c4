import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { BullmqDispatcher } from '../dispatch/bullmq-dispatcher.js';
import type { Dispatcher } from '../dispatch/dispatcher.js';
import { InProcessDispatcher } from '../dispatch/in-process-dispatcher.js';
import { RedisTaskEvents } from '../events/redis-task-events.js';
import { LocalTaskEvents, type TaskEvents } from '../events/task-events.js';
import type { ResultStore } from '../results/result-store.js';
import { openResultStore } from '../results/results-url.js';

/**
 * The deployment's moving parts, chosen from the configuration alone: in-process dispatch and wake-ups
 * without QRUN_REDIS_URL, BullMQ and Redis pub/sub with it; files or S3 by QRUN_RESULTS_URL.
 * Nothing else in the code asks which deployment it is in.
 */
export function createDispatcher(config: Config, log: Logger): Dispatcher {
  const limits = {
    workerConcurrency: config.workerConcurrency,
    connectionConcurrency: config.connectionConcurrency,
    organizationConcurrency: config.organizationConcurrency,
    maxQueued: config.maxQueued,
  };
  if (config.redisUrl === undefined) return new InProcessDispatcher(limits);
  return new BullmqDispatcher({
    redisUrl: config.redisUrl,
    prefix: config.redisPrefix,
    slotTtlSeconds: config.leaseSeconds,
    log,
    ...limits,
  });
}

export function createTaskEvents(config: Config, log: Logger): TaskEvents {
  if (config.redisUrl === undefined) return new LocalTaskEvents();
  return new RedisTaskEvents({ redisUrl: config.redisUrl, prefix: config.redisPrefix, log });
}

export function createResultStore(config: Config): ResultStore {
  return openResultStore(config.resultsUrl, {
    endpoint: config.s3Endpoint,
    region: config.s3Region,
    forcePathStyle: config.s3ForcePathStyle,
  });
}
