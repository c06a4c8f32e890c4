/**
 * Attack: one caller takes the API from everyone else by sheer request volume, or by a burst of connection
 * tests (each may fork a process, open a DuckDB instance or hold a socket for seconds). Defences, through
 * real HTTP: QRUN_RATE_LIMIT_PER_MINUTE per API key (in memory embedded, in Redis when scaled out, so the
 * count holds across api processes) and QRUN_MAX_CONNECTION_TESTS per process.
 *
 * The rate limit's window is a minute, longer than any test here, so no test waits for it to reset and
 * none asserts on time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_REDIS_URL, deploymentEnv, onScaleOut } from '../helpers/deployment.js';
import { startTestServer, type Auth, type Response, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

const LIMIT = 10;
const PG = { hostname: '127.0.0.1', port: 5432, database: 'test', username: 'postgres' };

const basic = (key: string, password = '') => `Basic ${Buffer.from(`${key}:${password}`).toString('base64')}`;

function expectRateLimited(r: Response, limit = LIMIT): void {
  expect(r.status, r.text).toBe(429);
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  expect(r.body).toEqual({
    status: 429,
    key: 'rate_limited',
    message: expect.stringMatching(
      new RegExp(`more than its ${limit} requests in a minute; try again in \\d+ seconds?\\.$`),
    ),
    metadata: { limit, retry_after_seconds: expect.any(Number) },
  });
  const retryAfter = Number(r.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
  expect(r.body.metadata.retry_after_seconds).toBe(retryAfter);
  expect(r.headers.get('ratelimit-limit')).toBe(String(limit));
  expect(r.headers.get('ratelimit-remaining')).toBe('0');
  expect(r.headers.get('ratelimit-reset')).toBe(String(retryAfter));
}

function expectCounted(r: Response, remaining: number, limit = LIMIT): void {
  expect(r.status, r.text).toBe(200);
  expect(r.headers.get('ratelimit-limit')).toBe(String(limit));
  expect(r.headers.get('ratelimit-remaining')).toBe(String(remaining));
  const reset = Number(r.headers.get('ratelimit-reset'));
  expect(reset >= 1 && reset <= 60).toBe(true);
}

describe(`QRUN_RATE_LIMIT_PER_MINUTE=${LIMIT}`, () => {
  let s: TestServer;
  let orgId: string;
  /** Fresh keys, one per test, so that each test starts from a full budget. */
  const keys: { userA: Auth; userB: Auth; orgA: string; orgB: string; orgC: string } = {} as never;

  beforeAll(async () => {
    s = await startTestServer({ QRUN_RATE_LIMIT_PER_MINUTE: String(LIMIT) });
    // The setup itself is rate-limited: the partner key makes 7 of its 10 requests here.
    const partner = { bearer: s.partnerKey };
    const org = await s.request('POST', '/api/organizations', { auth: partner, body: { name: 'limited' } });
    expect(org.status).toBe(200);
    orgId = org.body.data.id;
    const user = await s.request('POST', `/api/organizations/${orgId}/users`, {
      auth: partner,
      body: { email: 'admin@limited.example', role: 'admin' },
    });
    expect(user.status).toBe(200);
    const userKey = async () => {
      const r = await s.request('POST', `/api/organizations/${orgId}/users/${user.body.data.id}/keys`, {
        auth: partner,
      });
      expect(r.status).toBe(200);
      return { bearer: r.body.data.value as string };
    };
    const orgKey = async () => {
      const r = await s.request('POST', `/api/organizations/${orgId}/keys`, { auth: partner });
      expect(r.status).toBe(200);
      return r.body.data.value as string;
    };
    keys.userA = await userKey();
    keys.userB = await userKey();
    keys.orgA = await orgKey();
    keys.orgB = await orgKey();
    keys.orgC = await orgKey();
  });
  afterAll(async () => {
    await s?.close();
  });

  it(`answers the ${LIMIT + 1}th request of a key with 429 rate_limited, and serves another key`, async () => {
    for (let i = 1; i <= LIMIT; i++) {
      expectCounted(await s.request('GET', '/api/me', { auth: keys.userA }), LIMIT - i);
    }
    expectRateLimited(await s.request('GET', '/api/me', { auth: keys.userA }));
    // Still limited: refused requests do not end the window early.
    expectRateLimited(await s.request('GET', '/api/connections', { auth: keys.userA }));

    // Another key of the same organization (and the same user's other key) has its own count.
    expectCounted(await s.request('GET', '/api/me', { auth: { basic: keys.orgA } }), LIMIT - 1);
    expectCounted(await s.request('GET', '/api/me', { auth: keys.userB }), LIMIT - 1);
  });

  it('counts an organization key however its header is spelled (ignored password, case, spaces)', async () => {
    const key = keys.orgB;
    const encoded = Buffer.from(`${key}:`).toString('base64');
    const spellings = [
      basic(key),
      basic(key, 'pw-1'),
      basic(key, 'another password'),
      `bAsIc ${encoded}`,
      `BASIC    ${encoded}`,
      `Basic ${encoded}   `,
      basic(key, 'pw-2'),
      `basic ${Buffer.from(`${key}:x`).toString('base64')}`,
      basic(key, 'pw-3'),
      `bAsIc  ${Buffer.from(`${key}:y`).toString('base64')}`,
    ];
    expect(spellings).toHaveLength(LIMIT);
    for (const [i, header] of spellings.entries()) {
      expectCounted(await s.request('GET', '/api/me', { auth: { raw: header } }), LIMIT - 1 - i);
    }
    expectRateLimited(await s.request('GET', '/api/me', { auth: { raw: basic(key, 'pw-fresh') } }));
    expectRateLimited(await s.request('GET', '/api/me', { auth: { raw: `BaSiC   ${encoded}` } }));
    expectRateLimited(await s.request('GET', '/api/me', { auth: { basic: key } }));
  });

  it('never limits /healthz, /readyz, /metrics and the OpenAPI document, even for a limited key', async () => {
    // orgB is over its limit after the previous test; send it along anyway.
    const spent = { raw: basic(keys.orgB) };
    expectRateLimited(await s.request('GET', '/api/me', { auth: spent }));
    for (let i = 0; i < LIMIT * 2; i++) {
      for (const p of ['/healthz', '/readyz', '/metrics', '/api/openapi.json']) {
        const r = await s.request('GET', p, i % 2 === 0 ? { auth: spent } : {});
        expect(r.status, `${p}: ${r.text.slice(0, 200)}`).toBe(200);
        expect(r.headers.get('ratelimit-limit')).toBeNull();
      }
    }
  });

  it('does not count requests that fail authentication against anyone', async () => {
    const wrong = `qrun_o_${'A'.repeat(43)}`;
    for (let i = 0; i < LIMIT * 2; i++) {
      for (const auth of [{ basic: wrong }, { raw: basic(wrong, `pw-${i}`) }, { bearer: 'nonsense' }, {}]) {
        const r = await s.request('GET', '/api/me', { auth });
        expect(r.status).toBe(401);
        expect(r.body.key).toBe('unauthorized');
        expect(r.headers.get('ratelimit-limit')).toBeNull();
      }
    }
    // An organization key that was never used still has its whole budget.
    expectCounted(await s.request('GET', '/api/me', { auth: { basic: keys.orgC } }), LIMIT - 1);
  });

  it('a request beyond the limit changes nothing: a refused POST /api/connections saves nothing', async () => {
    const auth = keys.userB;
    const names = async (as: Auth) => {
      const r = await s.request('GET', '/api/connections', { auth: as });
      expect(r.status).toBe(200);
      return (r.body.data as { name: string }[]).map((c) => c.name);
    };
    // userB made 1 request in the first test; spend the rest.
    for (let i = 2; i <= LIMIT; i++) {
      const r = await s.request('GET', '/api/connections', { auth });
      expectCounted(r, LIMIT - i);
    }
    const refused = await s.request('POST', '/api/connections', {
      auth,
      body: { name: 'over-the-limit', type: 'postgresql', validate: false, configuration: PG },
    });
    expectRateLimited(refused);
    // Refused before the body was even read: a malformed body gets the same 429, not a 400.
    expectRateLimited(
      await s.request('POST', '/api/connections', { auth, rawBody: '{not json', headers: {} }),
    );
    expect(await names({ basic: keys.orgC })).not.toContain('over-the-limit');
  });
});

describe.skipIf(!onScaleOut)('two api processes sharing one Redis', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'qrun-rate-'));
  let deployment: Awaited<ReturnType<typeof deploymentEnv>> | undefined;
  const servers: TestServer[] = [];
  beforeAll(async () => {
    deployment = await deploymentEnv(dataDir);
    // One installation (metadata database, Redis prefix, secrets key, data directory) served twice.
    const env = { ...deployment.env, QRUN_RATE_LIMIT_PER_MINUTE: '5' };
    servers.push(await startTestServer(env, { dataDir }));
    servers.push(await startTestServer(env, { dataDir }));
  });
  afterAll(async () => {
    for (const server of servers) await server.close();
    await deployment?.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('share the count: requests split across both hit the limit together', async () => {
    const [one, two] = servers as [TestServer, TestServer];
    const admin = { bearer: one.adminKey };
    const me = await one.request('GET', '/api/me', { auth: admin });
    expect(me.status).toBe(200);
    const created = await two.request('POST', `/api/organizations/${me.body.data.organization_id}/keys`, {
      auth: admin,
    });
    expect(created.status).toBe(200);
    // The admin key's two requests, one on each server, were counted together.
    expect(created.headers.get('ratelimit-remaining')).toBe('3');

    const auth = { basic: created.body.data.value as string };
    const order = [one, two, one, two, two];
    for (const [i, server] of order.entries()) {
      expectCounted(await server.request('GET', '/api/connections', { auth }), 4 - i, 5);
    }
    expectRateLimited(await one.request('GET', '/api/connections', { auth }), 5);
    expectRateLimited(await two.request('GET', '/api/connections', { auth }), 5);

    // The counters live under the installation's prefix, like every other key qrun writes.
    const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      const counters = await redis.keys(`${deployment!.env.QRUN_REDIS_PREFIX}:rate-limit:*`);
      expect(counters.length).toBe(2);
    } finally {
      redis.disconnect();
    }

    // Fail open: a process that cannot reach Redis serves the request uncounted (and logs a warning),
    // while the other process still refuses the key.
    one.qrun.rateLimitRedis!.disconnect();
    const uncounted = await one.request('GET', '/api/connections', { auth });
    expect(uncounted.status, uncounted.text).toBe(200);
    expect(uncounted.headers.get('ratelimit-remaining')).toBe('5');
    expectRateLimited(await two.request('GET', '/api/connections', { auth }), 5);
  });
});

/** A TCP listener that accepts and never says a word: a PostgreSQL client waits on it for its connect timeout. */
async function silentListener(): Promise<{
  port: number;
  accepted(): number;
  hangUp(): void;
  close(): Promise<void>;
}> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const hangUp = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    hangUp,
    close: () =>
      new Promise<void>((resolve) => {
        hangUp();
        server.close(() => resolve());
      }),
  };
}

describe('QRUN_MAX_CONNECTION_TESTS=1', () => {
  let s: TestServer;
  let listener: Awaited<ReturnType<typeof silentListener>>;
  beforeAll(async () => {
    listener = await silentListener();
    s = await startTestServer({ QRUN_MAX_CONNECTION_TESTS: '1' });
  });
  afterAll(async () => {
    await listener?.close();
    await s?.close();
  });

  it('refuses a second test while one is in flight with 429 too_many_connection_tests, then allows it again', async () => {
    const auth = { bearer: s.adminKey };
    const held = { ...PG, port: listener.port, password: 'irrelevant' };
    const first = s.request('POST', '/api/connections/test', {
      auth,
      body: { type: 'postgresql', configuration: held },
    });
    // The slot is taken before the connector dials, so once the listener has the connection the test holds it.
    await waitUntil('the silent listener to accept the first test', () => listener.accepted() > 0, {
      intervalMs: 10,
    });

    const second = await s.request('POST', '/api/connections/test', {
      auth,
      body: { type: 'postgresql', configuration: PG },
    });
    expect(second.status, second.text).toBe(429);
    expect(second.body).toEqual({
      status: 429,
      key: 'too_many_connection_tests',
      message:
        'This server is already running its limit of 1 connection tests at once; try again in a second.',
      metadata: { limit: 1 },
    });
    expect(second.headers.get('retry-after')).toBe('1');

    // Saving with validation runs a test too: refused the same way, and nothing is saved.
    const save = await s.request('POST', '/api/connections', {
      auth,
      body: { name: 'while-busy', type: 'postgresql', configuration: PG },
    });
    expect(save.status, save.text).toBe(429);
    expect(save.body.key).toBe('too_many_connection_tests');
    // Without validation nothing runs, so nothing is limited.
    const unvalidated = await s.request('POST', '/api/connections', {
      auth,
      body: { name: 'unvalidated', type: 'postgresql', validate: false, configuration: PG },
    });
    expect(unvalidated.status, unvalidated.text).toBe(200);
    const list = await s.request('GET', '/api/connections', { auth });
    expect((list.body.data as { name: string }[]).map((c) => c.name)).toEqual(['unvalidated']);

    // The database "answers" by hanging up: the first test ends and frees its slot.
    listener.hangUp();
    const ended = await first;
    expect(ended.status, ended.text).toBe(400);
    expect(ended.body.key).toBe('connection_invalid');

    const again = await s.request('POST', '/api/connections/test', {
      auth,
      body: { type: 'postgresql', configuration: PG },
    });
    expect(again.status, again.text).toBe(200);
    expect(again.body.data.status).toBe('healthy');
    const saved = await s.request('POST', '/api/connections', {
      auth,
      body: { name: 'validated', type: 'postgresql', configuration: PG },
    });
    expect(saved.status, saved.text).toBe(200);
  });
});
