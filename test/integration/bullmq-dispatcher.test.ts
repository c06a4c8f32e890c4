import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { BullmqDispatcher, type BullmqDispatcherOptions } from '../../src/dispatch/bullmq-dispatcher.js';
import { ConnectionSlots } from '../../src/dispatch/connection-slots.js';
import type { DispatchedTask } from '../../src/dispatch/dispatcher.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { waitUntil } from '../helpers/wait.js';

// The machine's Redis is shared with other tests: every test works under its own key prefix and deletes
// exactly those keys afterwards.
const REDIS_URL = process.env.QRUN_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

let admin: Redis;
let prefix: string;
const dispatchers: BullmqDispatcher[] = [];

beforeAll(() => {
  admin = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  await admin.quit();
});
beforeEach(() => {
  prefix = `qrun-test-${randomBytes(6).toString('hex')}`;
});
afterEach(async () => {
  await Promise.all(dispatchers.splice(0).map((d) => d.close()));
  await deleteKeys(`${prefix}:*`);
});

async function deleteKeys(pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    if (keys.length > 0) await admin.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

function dispatcher(options: Partial<BullmqDispatcherOptions> = {}): BullmqDispatcher {
  const d = new BullmqDispatcher({
    redisUrl: REDIS_URL,
    prefix,
    workerConcurrency: 2,
    connectionConcurrency: 2,
    organizationConcurrency: Number.POSITIVE_INFINITY,
    maxQueued: 100,
    slotTtlSeconds: 5,
    ...options,
  });
  dispatchers.push(d);
  return d;
}

const waitFor = (what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000) =>
  waitUntil(what, condition, { timeoutMs, intervalMs: 25 });

/**
 * Redis's clock (ms), the one that decides when a slot runs out (ConnectionSlots reads TIME in its
 * scripts): tests wait on it and compare with it instead of sleeping and measuring their own time.
 */
async function redisNow(): Promise<number> {
  const [seconds, micros] = await admin.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/** When each holder's connection slot runs out (Redis time, ms). */
async function slotExpiries(connectionId: string): Promise<Map<string, number>> {
  const flat = await admin.zrange(`${prefix}:slots:{${connectionId}}`, 0, -1, 'WITHSCORES');
  const expiries = new Map<string, number>();
  for (let i = 0; i < flat.length; i += 2) expiries.set(flat[i]!, Number(flat[i + 1]));
  return expiries;
}

/** Waits until Redis's clock is past `ms`. */
const redisPast = (what: string, ms: number) =>
  waitUntil(what, async () => (await redisNow()) > ms, { intervalMs: 50 });

/** A TCP hop in front of the test Redis that the test can cut or start as a black hole. */
async function redisProxy(mode: 'forward' | 'blackhole' = 'forward') {
  const target = new URL(REDIS_URL);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) }, mode);
  const url = new URL(REDIS_URL);
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  return { url: url.toString(), cut: () => proxy.cut() };
}

/** Counts handler invocations running at once, in total and per connection. */
class Tracker {
  readonly runs: Omit<DispatchedTask, 'position'>[] = [];
  readonly finished: Omit<DispatchedTask, 'position'>[] = [];
  readonly maxByConnection = new Map<string, number>();
  private readonly activeByConnection = new Map<string, number>();
  active = 0;
  maxActive = 0;

  handler(work: (task: Omit<DispatchedTask, 'position'>) => Promise<void>) {
    return async (task: Omit<DispatchedTask, 'position'>): Promise<void> => {
      this.runs.push(task);
      this.active++;
      this.maxActive = Math.max(this.maxActive, this.active);
      const n = (this.activeByConnection.get(task.connectionId) ?? 0) + 1;
      this.activeByConnection.set(task.connectionId, n);
      this.maxByConnection.set(
        task.connectionId,
        Math.max(n, this.maxByConnection.get(task.connectionId) ?? 0),
      );
      try {
        await work(task);
      } finally {
        this.active--;
        this.activeByConnection.set(task.connectionId, this.activeByConnection.get(task.connectionId)! - 1);
        this.finished.push(task);
      }
    };
  }

  activeOn(connectionId: string): number {
    return this.activeByConnection.get(connectionId) ?? 0;
  }
}

/** A promise the test opens by hand, to hold handlers running for exactly as long as it needs. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

const ORG = randomUUID();
const tasksOn = (connectionId: string, n: number): DispatchedTask[] =>
  Array.from({ length: n }, (_, i) => ({
    taskId: randomUUID(),
    connectionId,
    organizationId: ORG,
    position: i + 1,
  }));
const newTask = (connectionId = randomUUID()): DispatchedTask => ({
  taskId: randomUUID(),
  connectionId,
  organizationId: ORG,
  position: 1,
});

describe('BullmqDispatcher', () => {
  it('runs a task enqueued twice once, and again when re-enqueued after it finished', async () => {
    const d = dispatcher();
    const task = newTask();
    await d.enqueue(task);
    await d.enqueue(task);
    expect(await d.backlog()).toBe(1);

    const t = new Tracker();
    d.start(t.handler(async () => undefined));
    await waitFor('the run', () => t.finished.length === 1);
    // Finished jobs are removed, so nothing is left that could run it again...
    await waitFor(
      'the job to be removed',
      async () => (await admin.exists(`${prefix}:queries:${task.taskId}`)) === 0,
    );
    expect(await d.backlog()).toBe(0);
    const { position: _position, ...handed } = task;
    expect(t.runs).toEqual([handed]);

    // ...and the same id can be queued again (the sweeper re-enqueueing a task after a Redis loss).
    await d.enqueue(task);
    await waitFor('the second run', () => t.finished.length === 2);
  });

  it('runs at most workerConcurrency tasks at once in one process', async () => {
    const d = dispatcher({ workerConcurrency: 2, connectionConcurrency: 10 });
    const tasks = Array.from({ length: 6 }, () => newTask());
    for (const task of tasks) await d.enqueue(task);
    const t = new Tracker();
    d.start(t.handler(() => sleep(150)));
    await waitFor('all tasks', () => t.finished.length === tasks.length);
    expect(t.maxActive).toBeLessThanOrEqual(2);
    expect(new Set(t.runs.map((r) => r.taskId))).toEqual(new Set(tasks.map((x) => x.taskId)));
  });

  it('holds the per-connection limit across three dispatcher instances, and runs every task', async () => {
    const options = { workerConcurrency: 3, connectionConcurrency: 2 };
    const instances = [dispatcher(options), dispatcher(options), dispatcher(options)];
    const [a, b] = [randomUUID(), randomUUID()];
    const tasks = [...tasksOn(a, 9), ...tasksOn(b, 4)];
    for (const [i, task] of tasks.entries()) await instances[i % 3]!.enqueue(task);

    const t = new Tracker();
    for (const d of instances) d.start(t.handler(() => sleep(200)));
    await waitFor('all tasks', () => t.finished.length === tasks.length, 30_000);

    // The limit was reached (the test is not vacuous) and never passed.
    expect(t.maxByConnection.get(a)).toBe(2);
    expect(t.maxByConnection.get(b)).toBeLessThanOrEqual(2);
    expect(t.runs).toHaveLength(tasks.length);
    expect(new Set(t.runs.map((r) => r.taskId)).size).toBe(tasks.length);
    // Every slot was handed back.
    const slots = new ConnectionSlots(admin, { prefix, limit: 2, ttlSeconds: 5 });
    expect(await slots.held(a)).toBe(0);
    expect(await slots.held(b)).toBe(0);
  });

  it('does not let a connection at its limit block other connections', async () => {
    const d = dispatcher({ workerConcurrency: 2, connectionConcurrency: 1 });
    const [busy, other] = [randomUUID(), randomUUID()];
    const held = gate();
    const busyTasks = tasksOn(busy, 3);
    for (const task of busyTasks) await d.enqueue(task);
    const otherTask = newTask(other);
    await d.enqueue(otherTask);

    const t = new Tracker();
    d.start(t.handler((task) => (task.connectionId === busy ? held.promise : Promise.resolve())));
    // The other connection's task runs while the busy connection's first task still holds its only slot.
    await waitFor('the other connection', () => t.finished.some((r) => r.taskId === otherTask.taskId));
    expect(t.activeOn(busy)).toBe(1);
    expect(t.runs.filter((r) => r.connectionId === busy)).toHaveLength(1);

    held.open();
    await waitFor('the busy connection', () => t.finished.length === 4);
    expect(t.maxByConnection.get(busy)).toBe(1);
  });

  it('frees a slot held by a dead worker once its TTL has passed', async () => {
    const connectionId = randomUUID();
    // A worker that took a slot and died: it never renews nor releases.
    const dead = new ConnectionSlots(admin, { prefix, limit: 1, ttlSeconds: 1 });
    expect(await dead.acquire(connectionId, 'dead-worker')).toBe(true);
    expect(await dead.acquire(connectionId, 'someone-else')).toBe(false);
    const deadUntil = (await slotExpiries(connectionId)).get('dead-worker')!;

    const d = dispatcher({ connectionConcurrency: 1 });
    const t = new Tracker();
    let startedAt = 0;
    d.start(t.handler(async () => void (startedAt = await redisNow())));
    await d.enqueue(newTask(connectionId));

    await waitFor('the task', () => t.finished.length === 1);
    // It ran only once the dead worker's slot had run out, by the clock that decides that (Redis's).
    expect(startedAt).toBeGreaterThanOrEqual(deadUntil);
    expect(await dead.held(connectionId)).toBe(0);
  });

  it('renews a held slot while its task runs', async () => {
    const connectionId = randomUUID();
    const d = dispatcher({ connectionConcurrency: 1, slotTtlSeconds: 1 });
    const held = gate();
    const t = new Tracker();
    d.start(t.handler(() => held.promise));
    await d.enqueue(newTask(connectionId));
    await waitFor('the task', () => t.runs.length === 1);

    // Past the time its slot was first taken until, the slot is still held, so another holder is refused.
    const [firstExpiry] = [...(await slotExpiries(connectionId)).values()];
    expect(firstExpiry).toBeDefined();
    await redisPast("Redis's clock to pass the slot's first expiry", firstExpiry!);
    const other = new ConnectionSlots(admin, { prefix, limit: 1, ttlSeconds: 1 });
    expect(await other.acquire(connectionId, 'intruder')).toBe(false);
    held.open();
    await waitFor('the release', async () => (await other.held(connectionId)) === 0);
  });

  it('answers 503 with Retry-After when the backlog is full, and adds nothing', async () => {
    const d = dispatcher({ maxQueued: 2 });
    const connectionId = randomUUID();
    await d.enqueue(newTask(connectionId));
    await d.enqueue(newTask(connectionId));
    const refused = newTask(connectionId);
    const err = await d.enqueue(refused).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).status).toBe(503);
    expect((err as AppError).headers?.['retry-after']).toBe('5');
    expect(await d.backlog()).toBe(2);
    expect(await admin.exists(`${prefix}:queries:${refused.taskId}`)).toBe(0);
  });

  it('fails fast with 503 when Redis cannot be reached', async () => {
    const d = new BullmqDispatcher({
      redisUrl: 'redis://127.0.0.1:1',
      prefix,
      workerConcurrency: 1,
      connectionConcurrency: 1,
      organizationConcurrency: Number.POSITIVE_INFINITY,
      maxQueued: 10,
      slotTtlSeconds: 5,
    });
    // Nothing listens on port 1, and nothing ever will: a 503 at all means enqueue gave up by itself
    // instead of waiting for a reconnect (the test's timeout bounds how long it may take).
    const err = await d.enqueue(newTask()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).status).toBe(503);
    expect((err as AppError).headers?.['retry-after']).toBe('5');
    expect((err as AppError).message).toContain('dispatch is unavailable');
    // And a second attempt, with the client now reconnecting, gives up the same way.
    await expect(d.enqueue(newTask())).rejects.toMatchObject({
      status: 503,
    });
    await d.close();
  });

  it('fails fast with 503 when Redis goes away after start', async () => {
    const proxy = await redisProxy();
    const d = dispatcher({ redisUrl: proxy.url });
    await d.enqueue(newTask());
    // The proxy stays cut: a 503 at all means enqueue did not wait for Redis to come back.
    await proxy.cut();
    await expect(d.enqueue(newTask())).rejects.toMatchObject({
      status: 503,
      headers: { 'retry-after': '5' },
    });
  });

  it('fails fast with 503 when Redis accepts connections but never answers', async () => {
    const proxy = await redisProxy('blackhole');
    const d = dispatcher({ redisUrl: proxy.url });
    // No answer ever comes: a 503 at all means enqueue has a deadline of its own.
    await expect(d.enqueue(newTask())).rejects.toMatchObject({
      status: 503,
    });
    await d.close();
    await proxy.cut();
  });

  it('close() waits for running handlers and refuses new tasks', async () => {
    const d = dispatcher();
    const held = gate();
    const t = new Tracker();
    d.start(t.handler(() => held.promise));
    await d.enqueue(newTask());
    await waitFor('the task', () => t.runs.length === 1);
    // An idle dispatcher on the same queue, started once the task is taken (so it cannot take it).
    const idle = dispatcher();
    idle.start(async () => undefined);
    await waitFor('the idle dispatcher to connect', () => idle.connected);

    const events: string[] = [];
    const closing = d.close().then(() => events.push('closed'));
    // Sentinel: the same close without a handler to wait for, begun after; had close() not waited for
    // the running handler, it would have ended first.
    await idle.close();
    events.push('idle closed');
    held.open();
    await closing;
    expect(events).toEqual(['idle closed', 'closed']);
    expect(t.finished).toHaveLength(1);
    await expect(d.enqueue(newTask())).rejects.toMatchObject({
      status: 503,
    });
  });
});

describe('ConnectionSlots', () => {
  it('counts holders against the limit and hands back the oldest parked waiter on release', async () => {
    const slots = new ConnectionSlots(admin, { prefix, limit: 2, ttlSeconds: 5 });
    const c = randomUUID();
    expect(await slots.acquire(c, 'h1')).toBe(true);
    expect(await slots.acquire(c, 'h2')).toBe(true);
    expect(await slots.acquire(c, 'h3', 'job-3')).toBe(false);
    expect(await slots.acquire(c, 'h4', 'job-4')).toBe(false);
    // Taking a slot one already holds just extends it.
    expect(await slots.acquire(c, 'h1')).toBe(true);
    expect(await slots.held(c)).toBe(2);

    expect(await slots.release(c, 'h1')).toBe('job-3');
    expect(await slots.acquire(c, 'h3', 'job-3')).toBe(true);
    expect(await slots.release(c, 'h2')).toBe('job-4');
    // job-4 stays first in line until it takes a slot itself.
    expect(await slots.release(c, 'h3')).toBe('job-4');
    expect(await slots.acquire(c, 'h4', 'job-4')).toBe(true);
    expect(await slots.release(c, 'h4')).toBeUndefined();
    expect(await slots.held(c)).toBe(0);
  });

  it('serves waiters first come, first served: a fresh job cannot take the slot a parked one was woken for', async () => {
    const slots = new ConnectionSlots(admin, { prefix, limit: 1, ttlSeconds: 5 });
    const c = randomUUID();
    expect(await slots.acquire(c, 'h1', 'job-1')).toBe(true);
    expect(await slots.acquire(c, 'h2', 'job-2')).toBe(false);
    expect(await slots.acquire(c, 'h3', 'job-3')).toBe(false);
    expect(await slots.release(c, 'h1')).toBe('job-2');
    // The slot is free, but job-2 and job-3 are ahead of a newcomer, and job-2 ahead of job-3.
    expect(await slots.acquire(c, 'h4', 'job-4')).toBe(false);
    expect(await slots.acquire(c, 'h3', 'job-3')).toBe(false);
    expect(await slots.acquire(c, 'h2', 'job-2')).toBe(true);
    expect(await slots.release(c, 'h2')).toBe('job-3');
    expect(await slots.acquire(c, 'h3', 'job-3')).toBe(true);
    expect(await slots.release(c, 'h3')).toBe('job-4');
    expect(await slots.acquire(c, 'h4', 'job-4')).toBe(true);
  });

  it('renew keeps a slot past its TTL; without renewal it runs out', async () => {
    const slots = new ConnectionSlots(admin, { prefix, limit: 1, ttlSeconds: 1 });
    const c = randomUUID();
    expect(await slots.acquire(c, 'renewed')).toBe(true);
    const firstExpiry = (await slotExpiries(c)).get('renewed')!;
    // Renewed every 200 ms until Redis's clock is past the first expiry: still held.
    await waitUntil(
      "Redis's clock to pass the first expiry, renewing meanwhile",
      async () => {
        expect(await slots.renew(c, 'renewed')).toBe(true);
        return (await redisNow()) > firstExpiry;
      },
      { intervalMs: 200 },
    );
    expect(await slots.acquire(c, 'other')).toBe(false);
    // Not renewed any more: once Redis's clock is past its last expiry, the slot is free.
    await redisPast("Redis's clock to pass the last expiry", (await slotExpiries(c)).get('renewed')!);
    expect(await slots.acquire(c, 'other')).toBe(true);
    // The first holder lost its slot and finds no room to take it back.
    expect(await slots.renew(c, 'renewed')).toBe(false);
    await slots.release(c, 'other');
    // An idle connection leaves no key behind once its last slot is released.
    expect(await admin.exists(`${prefix}:slots:{${c}}`)).toBe(0);
  });
});
