import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RedisTaskEvents } from '../../src/events/redis-task-events.js';
import { waitUntil } from '../helpers/wait.js';

// Pub/sub leaves no keys behind; a prefix per test keeps tests (and other suites) from hearing each other.
const REDIS_URL = process.env.QRUN_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

let prefix: string;
const instances: RedisTaskEvents[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeEach(() => {
  prefix = `qrun-test-${randomBytes(6).toString('hex')}`;
});
afterEach(async () => {
  await Promise.all(instances.splice(0).map((e) => e.close()));
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function events(redisUrl = REDIS_URL, ready = true): Promise<RedisTaskEvents> {
  const e = new RedisTaskEvents({ redisUrl, prefix });
  instances.push(e);
  if (ready) await e.ready();
  return e;
}

/** Resolves with the next call of the returned listener. */
function nextCall<A extends unknown[]>(): { listener: (...args: A) => void; called: Promise<A> } {
  let resolve!: (args: A) => void;
  const called = new Promise<A>((r) => (resolve = r));
  return { listener: (...args: A) => resolve(args), called };
}

/** The promise's value; a failure naming the bound if it has not come by then (a bound, not a measurement). */
function within<T>(promise: Promise<T>, ms = 5000): Promise<T> {
  return Promise.race([
    promise,
    sleep(ms).then(() => {
      throw new Error(`not within ${ms} ms`);
    }),
  ]);
}

/** A TCP hop in front of the test Redis that the test can cut, and open again on the same port. */
async function redisProxy() {
  const target = new URL(REDIS_URL);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const open = async () => {
    const s = createServer((client) => {
      const upstream = connect(Number(target.port || 6379), target.hostname);
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => socket.destroy());
        socket.on('close', () => {
          sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => s.listen(port, '127.0.0.1', resolve));
    port = (s.address() as AddressInfo).port;
    server = s;
  };
  const cut = async () => {
    for (const socket of sockets) socket.destroy();
    const s = server;
    server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  await open();
  cleanups.push(cut);
  const url = new URL(REDIS_URL);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return { url: url.toString(), open, cut };
}

describe('RedisTaskEvents', () => {
  it('delivers finished from one instance to listeners of that task on another', async () => {
    const [api, worker] = [await events(), await events()];
    const task = randomUUID();
    const other = nextCall<[]>();
    let wrong = 0;
    api.onFinished(randomUUID(), () => wrong++);
    const first = nextCall<[]>();
    const second = nextCall<[]>();
    api.onFinished(task, first.listener);
    api.onFinished(task, second.listener);

    await worker.publishFinished(task);
    await within(Promise.all([first.called, second.called]));
    // Sent after, on the same channel: once it arrives, any stray delivery would have arrived too.
    const sentinel = randomUUID();
    api.onFinished(sentinel, other.listener);
    await worker.publishFinished(sentinel);
    await within(other.called);
    expect(wrong).toBe(0);
  });

  it('delivers cancel with the task id to every instance', async () => {
    const [api, w1, w2] = [await events(), await events(), await events()];
    const task = randomUUID();
    const heard1 = nextCall<[string]>();
    const heard2 = nextCall<[string]>();
    w1.onCancel(heard1.listener);
    w2.onCancel(heard2.listener);
    await api.publishCancel(task);
    expect(await within(heard1.called)).toEqual([task]);
    expect(await within(heard2.called)).toEqual([task]);
  });

  it('tells every instance that keys or users changed', async () => {
    const [api1, api2, api3] = [await events(), await events(), await events()];
    const heard2 = nextCall<[]>();
    const heard3 = nextCall<[]>();
    api2.onIdentityChanged(heard2.listener);
    api3.onIdentityChanged(heard3.listener);
    await api1.publishIdentityChanged();
    await within(Promise.all([heard2.called, heard3.called]));
  });

  it('stops calling a listener once it is unsubscribed', async () => {
    const [api, worker] = [await events(), await events()];
    const task = randomUUID();
    let finishedCalls = 0;
    let cancelCalls = 0;
    api.onFinished(task, () => finishedCalls++)();
    worker.onCancel(() => cancelCalls++)();

    const sentinel = randomUUID();
    const finishedSeen = nextCall<[]>();
    const cancelSeen = nextCall<[string]>();
    api.onFinished(sentinel, finishedSeen.listener);
    worker.onCancel(cancelSeen.listener);
    await worker.publishFinished(task);
    await api.publishCancel(task);
    await worker.publishFinished(sentinel);
    await within(Promise.all([finishedSeen.called, cancelSeen.called]));
    expect(finishedCalls).toBe(0);
    expect(cancelCalls).toBe(0);
  });

  it('does not hear another deployment (prefix)', async () => {
    const mine = await events();
    const theirs = new RedisTaskEvents({ redisUrl: REDIS_URL, prefix: `${prefix}-other` });
    instances.push(theirs);
    await theirs.ready();
    let heard = 0;
    mine.onCancel(() => heard++);
    const own = nextCall<[string]>();
    theirs.onCancel(own.listener);
    await theirs.publishCancel(randomUUID());
    await within(own.called);
    // The same channel of `mine` carries a sentinel; once it arrives, the other prefix's message would have too.
    const sentinel = nextCall<[string]>();
    mine.onCancel(sentinel.listener);
    await mine.publishCancel(randomUUID());
    await within(sentinel.called);
    expect(heard).toBe(1); // the sentinel only
  });

  it('rejects a publish while Redis cannot be reached, rather than holding it for later', async () => {
    // Nothing listens on port 1, and nothing ever will: a rejection at all means nothing was queued.
    const down = await events('redis://127.0.0.1:1', false);
    await expect(down.publishFinished(randomUUID())).rejects.toThrow();
    await expect(down.publishCancel(randomUUID())).rejects.toThrow();
  });

  it('rejects during an outage and hears messages again after Redis is back', async () => {
    const proxy = await redisProxy();
    const flaky = await events(proxy.url);
    const sender = await events();

    // Redis stays away until the test opens the proxy again: a rejection means the publish was not held.
    await proxy.cut();
    await expect(flaky.publishCancel(randomUUID())).rejects.toThrow();

    await proxy.open();
    // ioredis subscribes again after reconnecting; resend until the hint gets through (it is only a hint).
    const task = randomUUID();
    const heard = nextCall<[]>();
    flaky.onFinished(task, heard.listener);
    let got = false;
    void heard.called.then(() => (got = true));
    await waitUntil(
      'a finished hint to reach the reconnected instance',
      async () => {
        if (got) return true;
        await sender.publishFinished(task);
        return false;
      },
      { intervalMs: 200 },
    );
    // And its own publishes work again.
    await waitUntil(
      'a publish from the reconnected instance to succeed',
      () =>
        flaky.publishCancel(randomUUID()).then(
          () => true,
          () => false,
        ),
      { intervalMs: 200 },
    );
  });

  it('close() drops listeners and refuses publishes', async () => {
    const e = await events();
    let calls = 0;
    e.onCancel(() => calls++);
    await e.close();
    await expect(e.publishCancel(randomUUID())).rejects.toThrow();
    expect(calls).toBe(0);
  });
});
