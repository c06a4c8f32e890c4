/**
 * GET /api/queries/{id}/events: Server-Sent Events through real HTTP, on the deployment under test. The
 * events of a query in order, ending with done or failed; owner-only; a client that goes away leaves no
 * stream, wake-up listener or slot behind; the per-key cap; closing the server ends open streams; and, on
 * the scale-out deployment, the same query followed through two api processes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploymentEnv, onScaleOut } from '../helpers/deployment.js';
import { openEvents, type EventStream } from '../helpers/event-stream.js';
import { startTestServer, type Auth, type TestServer } from '../helpers/server.js';
import { createPostgresConnection, submitQuery } from '../helpers/tenants.js';
import { waitForQueryEnd, waitUntil } from '../helpers/wait.js';

const ORDER = ['created', 'running', 'done', 'failed'];

let s: TestServer;
let admin: Auth;
let connectionId: string;

beforeAll(async () => {
  s = await startTestServer({
    QRUN_PAGE_ROWS: '10',
    QRUN_MAX_WAITS_PER_KEY: '2',
    QRUN_SSE_HEARTBEAT_SECONDS: '1',
  });
  admin = { bearer: s.adminKey };
  connectionId = await createPostgresConnection(s, admin);
});
afterAll(() => s?.close());

const follow = (server: TestServer, auth: Auth, id: string) =>
  openEvents(server.url, `/api/queries/${id}/events`, auth);

/** The stream ends by itself; then its events are checked for order: statuses never go back, one final event, last. */
async function finished(stream: EventStream): Promise<EventStream> {
  await stream.ended;
  const names = stream.events.map((e) => e.event);
  expect(names[0], JSON.stringify(stream.events)).toBe('status');
  const finals = names.filter((n) => n === 'done' || n === 'failed');
  expect(finals, JSON.stringify(names)).toHaveLength(1);
  expect(['done', 'failed']).toContain(names.at(-1));
  const statuses = stream.events.filter((e) => e.event === 'status').map((e) => ORDER.indexOf(e.data.status));
  expect([...statuses].sort((a, b) => a - b)).toEqual(statuses);
  return stream;
}

async function newUser(email: string): Promise<Auth> {
  const me = await s.request('GET', '/api/me', { auth: admin });
  const org = me.body.data.organization_id;
  const u = await s.request('POST', `/api/organizations/${org}/users`, {
    auth: admin,
    body: { email, role: 'user' },
  });
  const k = await s.request('POST', `/api/organizations/${org}/users/${u.body.data.id}/keys`, {
    auth: admin,
  });
  return { bearer: k.body.data.value };
}

describe('GET /api/queries/{id}/events', () => {
  it('streams the status at once, then done with the count and the first page link, and ends', async () => {
    const id = await submitQuery(s, admin, connectionId, 'select n from generate_series(1, 25) n');
    const stream = await follow(s, admin, id);
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(stream.headers.get('cache-control')).toBe('no-store');
    await finished(stream);
    const done = stream.events.at(-1)!;
    expect(done).toEqual({
      event: 'done',
      data: {
        id,
        status: 'done',
        count: 25,
        truncated: false,
        expires: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
        links: { first: `/api/queries/${id}` },
      },
    });
    // Every status event before it names this query.
    for (const e of stream.events) expect(e.data.id).toBe(id);
    const first = await s.request('GET', done.data.links.first, { auth: admin });
    expect(first.status).toBe(200);
    expect(first.body.data.count).toBe(25);
    expect(first.body.data.results).toHaveLength(10);
  });

  it('ends with failed, carrying the error and error_details, for a failing query', async () => {
    const id = await submitQuery(s, admin, connectionId, 'select * from qrun_no_such_table');
    const stream = await finished(await follow(s, admin, id));
    const failed = stream.events.at(-1)!;
    expect(failed.event).toBe('failed');
    expect(failed.data).toMatchObject({
      id,
      status: 'failed',
      error: expect.stringContaining('qrun_no_such_table'),
      error_details: expect.objectContaining({ sqlstate: '42P01' }),
    });
  });

  it('sends progress while a query runs, rows never going back', async () => {
    // 200 rows, 20 ms each, in pages of 10: about four seconds of pages being stored.
    const id = await submitQuery(
      s,
      admin,
      connectionId,
      'select n, pg_sleep(0.02) as slept from generate_series(1, 200) n',
    );
    const stream = await finished(await follow(s, admin, id));
    const progress = stream.events.filter((e) => e.event === 'progress');
    expect(progress.length, JSON.stringify(stream.events)).toBeGreaterThan(0);
    const rows = progress.map((e) => e.data.progress.rows as number);
    expect([...rows].sort((a, b) => a - b)).toEqual(rows);
    for (const e of progress) {
      expect(e.data).toEqual({
        id,
        progress: {
          rows: expect.any(Number),
          pages: expect.any(Number),
          bytes: expect.any(Number),
          elapsed_ms: expect.any(Number),
        },
      });
    }
    // Progress comes while it runs: after a running status, before the end.
    const names = stream.events.map((e) => (e.event === 'status' ? e.data.status : e.event));
    expect(names.indexOf('running')).toBeLessThan(names.indexOf('progress'));
    expect(stream.events.at(-1)).toMatchObject({ event: 'done', data: { count: 200 } });
  });

  it('answers a finished query with its status and final event at once', async () => {
    const id = await submitQuery(s, admin, connectionId, 'select 1 as x');
    await waitForQueryEnd(s, admin, id);
    const stream = await finished(await follow(s, admin, id));
    expect(stream.events.map((e) => e.event)).toEqual(['status', 'done']);
    expect(stream.events[0]!.data).toEqual({ id, status: 'done' });
  });

  it('is the creator’s only: 404 for anyone else, 400 for a malformed id, 401 without a key', async () => {
    const id = await submitQuery(s, admin, connectionId, 'select 1 as x');
    const other = await newUser('events-other@localhost.example');
    for (const auth of [other, { bearer: s.partnerKey }]) {
      const r = await follow(s, auth, id);
      expect(r.status).toBe(404);
      expect(r.headers.get('content-type')).toMatch(/^application\/json/);
      expect(r.body).toMatchObject({ status: 404, key: 'not_found' });
    }
    const missing = await follow(s, admin, '00000000-0000-4000-8000-000000000000');
    expect(missing.status).toBe(404);
    const malformed = await follow(s, admin, 'not-a-uuid');
    expect(malformed.status).toBe(400);
    expect(malformed.body.key).toBe('invalid_id');
    const anonymous = await follow(s, {}, id);
    expect(anonymous.status).toBe(401);
  });

  it('frees the stream, its wake-up listener and its slot when the client goes away; the cap holds', async () => {
    // Count the wake-up subscriptions the streams hold (the service's own TaskEvents, wrapped).
    const events = (s.qrun.queries as any).deps.events;
    const subscribe = events.onFinished;
    let listening = 0;
    events.onFinished = (taskId: string, listener: () => void) => {
      listening++;
      const off = subscribe.call(events, taskId, listener);
      return () => {
        listening--;
        off();
      };
    };
    try {
      const id = await submitQuery(s, admin, connectionId, 'select pg_sleep(30)');
      const a = await follow(s, admin, id);
      const b = await follow(s, admin, id);
      await waitUntil('two streams holding their slots', () => s.qrun.queries.eventStreamsOpen === 2);
      expect(listening).toBe(2);
      // The key's cap (QRUN_MAX_WAITS_PER_KEY=2) is taken: a third stream is the status event, then its end.
      const c = await follow(s, admin, id);
      await c.ended;
      expect(c.events).toEqual([
        { event: 'status', data: { id, status: expect.stringMatching(/created|running/) } },
      ]);
      // A quiet stream carries heartbeats.
      await waitUntil('a heartbeat', () => a.comments.includes('ping'));

      a.close();
      b.close();
      await waitUntil(
        () => `the streams to be gone (open: ${s.qrun.queries.eventStreamsOpen}, listeners: ${listening})`,
        () => s.qrun.queries.eventStreamsOpen === 0 && s.qrun.queries.longPollsOpen === 0 && listening === 0,
      );
      // The slots are free again: a new stream holds one.
      const d = await follow(s, admin, id);
      await waitUntil('a new stream to hold a slot', () => s.qrun.queries.eventStreamsOpen === 1);
      expect(d.isEnded()).toBe(false);
      const canceled = await s.request('POST', `/api/queries/${id}/cancel`, { auth: admin });
      expect(canceled.status).toBe(200);
      await finished(d);
      expect(d.events.at(-1)).toMatchObject({ event: 'failed', data: { error: 'canceled' } });
      await waitUntil(
        'the last stream to be gone',
        () => s.qrun.queries.eventStreamsOpen === 0 && listening === 0,
      );
    } finally {
      events.onFinished = subscribe;
    }
  });

  it('ends open streams when the server closes', async () => {
    const own = await startTestServer();
    try {
      const auth = { bearer: own.adminKey };
      const conn = await createPostgresConnection(own, auth);
      const id = await submitQuery(own, auth, conn, 'select pg_sleep(30)');
      const stream = await follow(own, auth, id);
      await waitUntil('the stream to hold a slot', () => own.qrun.queries.eventStreamsOpen === 1);
      await own.app.close();
      await stream.ended;
      expect(own.qrun.queries.eventStreamsOpen).toBe(0);
    } finally {
      await own.close();
    }
  });
});

describe.skipIf(!onScaleOut)('two api processes sharing one deployment', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'qrun-events-'));
  let deployment: Awaited<ReturnType<typeof deploymentEnv>> | undefined;
  const servers: TestServer[] = [];
  beforeAll(async () => {
    deployment = await deploymentEnv(dataDir);
    servers.push(await startTestServer(deployment.env, { dataDir }));
    servers.push(await startTestServer(deployment.env, { dataDir }));
  });
  afterAll(async () => {
    for (const server of servers) await server.close();
    await deployment?.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('follow a query through either process, whichever worker runs it', async () => {
    const [one, two] = servers as [TestServer, TestServer];
    const auth = { bearer: one.adminKey };
    const conn = await createPostgresConnection(one, auth);
    // Both processes run workers: one of the two streams is always in a process the query did not run in.
    const id = await submitQuery(one, auth, conn, 'select pg_sleep(1.5) as slept, 7 as x');
    const streams = [await follow(one, auth, id), await follow(two, auth, id)];
    for (const stream of streams) {
      await finished(stream);
      expect(stream.events.at(-1)).toMatchObject({ event: 'done', data: { id, count: 1 } });
    }
  });
});
