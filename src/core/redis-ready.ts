import type { Redis } from 'ioredis';

/**
 * Settles as soon as a Redis client is usable or known not to be: ready resolves at once; a client that is
 * between reconnect attempts (Redis is away) rejects at once; one still connecting gets at most `ms`.
 * Callers that must fail fast (a submit's 503, a dropped wake-up) use it instead of ioredis's offline queue.
 */
export function whenRedisReady(redis: Redis, ms: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  if (redis.status !== 'connecting' && redis.status !== 'connect' && redis.status !== 'wait') {
    return Promise.reject(new Error(`Redis is not connected (${redis.status})`));
  }
  return new Promise((resolve, reject) => {
    const settle = (err: Error | undefined) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onError);
      redis.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onReady = () => settle(undefined);
    const onError = (err: unknown) => settle(err instanceof Error ? err : new Error(String(err)));
    const onClose = () => settle(new Error('Redis connection closed'));
    const timer = setTimeout(() => settle(new Error(`Redis did not connect within ${ms} ms`)), ms);
    redis.once('ready', onReady);
    redis.once('error', onError);
    redis.once('close', onClose);
  });
}
