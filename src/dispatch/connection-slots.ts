import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export interface ConnectionSlotsOptions {
  /** Key prefix shared by every process of one deployment. */
  prefix: string;
  /**
   * What is being limited, as it appears in the keys: `slots` (connections, the default) or `org-slots`
   * (organizations). The same semaphore serves both.
   */
  namespace?: string;
  /** Holders allowed at once on one connection, across all processes. Every process must use the same value. */
  limit: number;
  /** A holder that stops renewing (its process died) loses its slot after this long. */
  ttlSeconds: number;
}

/**
 * How long a parked job id is remembered. A parked job that is still waiting parks itself again each time
 * its delay runs out, which refreshes this; the expiry only clears ids of jobs that went away.
 */
const PARKED_TTL_MS = 60 * 60 * 1000;

// Times come from the Redis server (TIME), never from the callers, so workers on machines whose clocks
// disagree still agree on when a slot runs out. Redis 7 replicates script effects, so TIME is allowed.
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

// The key lives as long as its longest-living holder, so an idle connection leaves nothing behind.
const EXPIRE_WITH_LAST_HOLDER = `
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
`;

// A parked waiter re-tries at least every couple of seconds (its back-off), refreshing its `seen` time. One
// not seen for this long belongs to a job that went away; it is dropped so it cannot hold the line forever.
const STALE_WAITER_MS = 30_000;

const DROP_STALE_WAITERS = `
local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - ${STALE_WAITER_MS})
for _, w in ipairs(stale) do
  redis.call('ZREM', KEYS[2], w)
  redis.call('ZREM', KEYS[3], w)
end
`;

/**
 * KEYS: slots, parked, seen. ARGV: holder, limit, ttlMs, waiter ('' for none).
 * Takes a slot (or extends it, if the holder has one already). Waiters are served first come, first served:
 * a free slot goes to a waiter only when fewer waiters are parked ahead of it than there are free slots, so a
 * fresh job cannot overtake one that has been waiting. On failure the waiter is parked (keeping its place
 * if it had one); on success it leaves the line.
 */
const ACQUIRE = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
${DROP_STALE_WAITERS}
local waiter = ARGV[4]
local grant = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not grant then
  local free = tonumber(ARGV[2]) - redis.call('ZCARD', KEYS[1])
  if free > 0 then
    local ahead = 0
    if waiter ~= '' then
      ahead = redis.call('ZRANK', KEYS[2], waiter) or redis.call('ZCARD', KEYS[2])
    end
    grant = ahead < free
  end
end
if grant then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  ${EXPIRE_WITH_LAST_HOLDER}
  if waiter ~= '' then
    redis.call('ZREM', KEYS[2], waiter)
    redis.call('ZREM', KEYS[3], waiter)
  end
  return 1
end
if waiter ~= '' then
  redis.call('ZADD', KEYS[2], 'NX', now, waiter)
  redis.call('ZADD', KEYS[3], now, waiter)
  redis.call('PEXPIRE', KEYS[2], ${PARKED_TTL_MS})
  redis.call('PEXPIRE', KEYS[3], ${PARKED_TTL_MS})
end
return 0
`;

/**
 * KEYS: slots. ARGV: holder, limit, ttlMs.
 * Extends a held slot. A holder whose slot ran out anyway (a stalled process, a long Redis outage) takes it
 * again if there is room; 0 means the limit is briefly exceeded by this holder.
 */
const RENEW = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  ${EXPIRE_WITH_LAST_HOLDER}
  return 1
end
return 0
`;

/**
 * KEYS: slots, parked, seen. ARGV: holder, limit.
 * Frees the holder's slot and, when there is room, names the oldest parked waiter to wake. The waiter stays
 * in line until it actually takes the slot, so nobody can jump ahead of it meanwhile.
 */
const RELEASE = `${NOW}
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
${DROP_STALE_WAITERS}
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  local waiter = redis.call('ZRANGE', KEYS[2], 0, 0)
  if waiter[1] then return waiter[1] end
end
return false
`;

/** KEYS: slots. Live holders. */
const COUNT = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
`;

class Script {
  readonly sha: string;
  constructor(
    readonly source: string,
    readonly keys: number,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** EVALSHA, falling back to EVAL once after a Redis restart (or on first use) drops the script cache. */
  async run(redis: Redis, args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, this.keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.source, this.keys, ...args);
    }
  }
}

const scripts = {
  acquire: new Script(ACQUIRE, 3),
  renew: new Script(RENEW, 1),
  release: new Script(RELEASE, 3),
  count: new Script(COUNT, 1),
};

/**
 * A counting semaphore per connection id that holds across every worker process: a sorted set
 * `<prefix>:slots:{<connectionId>}` of holder ids, each scored by the time its slot runs out. Holders renew
 * while they work; a holder whose process died simply stops renewing, and its entry is dropped by the next
 * script that looks at the set once the TTL has passed. Each operation is one Lua script, so the check and
 * the change are atomic.
 *
 * Beside it, `<prefix>:slots:{<connectionId>}:parked` keeps the ids of jobs that found no free slot, oldest
 * first: they are served in that order, and a release wakes the oldest at once instead of leaving it to its
 * back-off timer.
 */
export class ConnectionSlots {
  private readonly ttlMs: number;

  constructor(
    private readonly redis: Redis,
    private readonly options: ConnectionSlotsOptions,
  ) {
    if (!(options.limit >= 1)) throw new Error('ConnectionSlots: limit must be at least 1');
    if (!(options.ttlSeconds > 0)) throw new Error('ConnectionSlots: ttlSeconds must be positive');
    this.ttlMs = Math.ceil(options.ttlSeconds * 1000);
  }

  /**
   * Takes a slot for `holder` (a unique id per running task). When none is free and a `waiter` is given,
   * parks it so a later release can return it.
   */
  async acquire(connectionId: string, holder: string, waiter?: string): Promise<boolean> {
    const result = await scripts.acquire.run(this.redis, [
      this.slotsKey(connectionId),
      this.parkedKey(connectionId),
      this.seenKey(connectionId),
      holder,
      this.options.limit,
      this.ttlMs,
      waiter ?? '',
    ]);
    return result === 1;
  }

  /** Extends the holder's slot; false when it had run out and there was no room to take it again. */
  async renew(connectionId: string, holder: string): Promise<boolean> {
    const result = await scripts.renew.run(this.redis, [
      this.slotsKey(connectionId),
      holder,
      this.options.limit,
      this.ttlMs,
    ]);
    return result === 1;
  }

  /** Frees the holder's slot. Returns the oldest parked waiter, which the caller should wake, if any. */
  async release(connectionId: string, holder: string): Promise<string | undefined> {
    const result = await scripts.release.run(this.redis, [
      this.slotsKey(connectionId),
      this.parkedKey(connectionId),
      this.seenKey(connectionId),
      holder,
      this.options.limit,
    ]);
    return typeof result === 'string' ? result : undefined;
  }

  /** Slots held right now on one connection (for metrics and tests). */
  async held(connectionId: string): Promise<number> {
    return Number(await scripts.count.run(this.redis, [this.slotsKey(connectionId)]));
  }

  /** How often a holder should renew: several times per TTL, so one missed renewal costs nothing. */
  get renewIntervalMs(): number {
    return Math.max(100, Math.floor(this.ttlMs / 3));
  }

  private slotsKey(connectionId: string): string {
    // The braces are a Redis Cluster hash tag: both keys of one connection live in one slot, as a
    // script touching both requires.
    return `${this.base}:{${connectionId}}`;
  }

  private parkedKey(connectionId: string): string {
    return `${this.base}:{${connectionId}}:parked`;
  }

  /** When each parked waiter last tried, to drop waiters whose job went away. */
  private seenKey(connectionId: string): string {
    return `${this.base}:{${connectionId}}:seen`;
  }

  private get base(): string {
    return `${this.options.prefix}:${this.options.namespace ?? 'slots'}`;
  }
}
