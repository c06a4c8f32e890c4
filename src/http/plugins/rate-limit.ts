import { createRequire } from 'node:module';
import rateLimit, {
  type FastifyRateLimitStore,
  type FastifyRateLimitStoreCtor,
  type errorResponseBuilderContext,
} from '@fastify/rate-limit';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { AppError } from '../../core/errors.js';
import { whenRedisReady } from '../../core/redis-ready.js';
import { throttledWarn } from '../../core/throttled-log.js';

export interface RateLimitSettings {
  /** Requests per API key per minute (QRUN_RATE_LIMIT_PER_MINUTE); 0 turns the limit off. */
  perMinute: number;
  /** Shared counters (scale-out); undefined: this process counts in memory. */
  redis: Redis | undefined;
  /** QRUN_REDIS_PREFIX: counters live under `<prefix>:rate-limit:<key id>`. */
  prefix: string;
  log: FastifyBaseLogger;
}

const WINDOW_MS = 60_000;
/** Keys counted at once in memory; past it the least recently seen key starts a fresh window. */
const LOCAL_KEYS = 10_000;
/** A Redis that is still connecting gets this long before the request goes through uncounted. */
const REDIS_WAIT_MS = 1000;

/**
 * Requests per API key per minute, with @fastify/rate-limit. Must be registered after the authentication
 * hook and before the routes: the plugin adds its check to each route registered after it as a route-level
 * onRequest hook, and Fastify runs route-level hooks after the application's, so the check sees the
 * authenticated key and runs before the body is read. Consequences:
 * - the counter is the key's id, so varying the ignored Basic password or the header's spelling counts
 *   against the same key;
 * - a request that fails authentication (401) never reaches the check and counts against nobody;
 * - public routes (`config: { public: true }`: health, readiness, metrics, OpenAPI, docs) get no check.
 * Beyond the limit: 429 `rate_limited` through the one error handler, with Retry-After and the draft
 * standard's RateLimit-Limit, -Remaining and -Reset headers (which successful responses carry too).
 * When Redis cannot be reached the request goes through uncounted and a warning is logged (fail open):
 * a Redis outage already stops query dispatch, and should not also refuse every read.
 */
export async function registerRateLimit(app: FastifyInstance, settings: RateLimitSettings): Promise<void> {
  if (settings.perMinute === 0) return;
  // Before the plugin's own onRoute hook: public routes opt out, so they cost nothing per request.
  app.addHook('onRoute', (route) => {
    if (route.config?.public) route.config.rateLimit = false;
  });
  await app.register(rateLimit, {
    global: true,
    max: settings.perMinute,
    timeWindow: WINDOW_MS,
    hook: 'onRequest',
    enableDraftSpec: true,
    cache: LOCAL_KEYS,
    skipOnError: true,
    // Every limited route is authenticated, so the principal is set; the fallback only guards a mistake.
    keyGenerator: (request) => request.principalOrNull?.keyId ?? `ip:${request.ip}`,
    ...(settings.redis
      ? { store: redisStore(settings.redis, `${settings.prefix}:rate-limit:`, settings.log) }
      : {}),
    errorResponseBuilder: (_request, context) => rateLimited(context),
  });
}

function rateLimited(context: errorResponseBuilderContext): AppError {
  const seconds = Math.max(1, Math.ceil(context.ttl / 1000));
  return new AppError(
    429,
    'rate_limited',
    `This API key has made more than its ${context.max} requests in a minute; try again in ${seconds} ${
      seconds === 1 ? 'second' : 'seconds'
    }.`,
    {
      metadata: { limit: context.max, retry_after_seconds: seconds },
      headers: {
        'retry-after': String(seconds),
        'ratelimit-limit': String(context.max),
        'ratelimit-remaining': '0',
        'ratelimit-reset': String(seconds),
      },
    },
  );
}

/** The plugin's own Redis store (an atomic INCR + PEXPIRE script); it has no typings of its own. */
type PluginRedisStore = new (
  continueExceeding: boolean,
  exponentialBackoff: boolean,
  redis: Redis,
  nameSpace: string,
) => FastifyRateLimitStore;

/**
 * The plugin's Redis store, wrapped so that a failure is logged (at most every 30 s) before the plugin
 * lets the request through (skipOnError), and so that a client still connecting at start-up gets a moment
 * instead of failing at once (the client has no offline queue: see createRateLimitRedis).
 */
function redisStore(redis: Redis, nameSpace: string, log: FastifyBaseLogger): FastifyRateLimitStoreCtor {
  const RedisStore = createRequire(import.meta.url)(
    '@fastify/rate-limit/store/RedisStore',
  ) as PluginRedisStore;
  const inner = new RedisStore(false, false, redis, nameSpace);
  const warn = throttledWarn(log, 'rate limit: Redis unreachable, requests pass uncounted');
  return class LoggingRedisStore implements FastifyRateLimitStore {
    incr(...[key, callback, timeWindow, max]: Parameters<FastifyRateLimitStore['incr']>): void {
      const done: typeof callback = (err, result) => {
        if (err) warn(err);
        callback(err, result);
      };
      if (redis.status === 'ready') return inner.incr(key, done, timeWindow, max);
      whenRedisReady(redis, REDIS_WAIT_MS).then(
        () => inner.incr(key, done, timeWindow, max),
        (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
      );
    }

    // qrun sets no per-route limits, so every route shares the one counter per key.
    child(): FastifyRateLimitStore {
      return this;
    }
  };
}
