/**
 * callback_url through real HTTP, on the deployment under test: a receiver on 127.0.0.1 records what
 * arrives. The body and its signature (checked with README.md's own snippet), every way a query ends
 * (done, failed, canceled before it ran, timed out, lost with its worker), a crash between a task's end
 * and its delivery row, retries with back-off and giving up, and two signatures for 24 hours after a
 * rotation. Time moves by the injectable clock, and the delivery step is called directly: no test waits
 * out a back-off.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testClock } from '../helpers/clock.js';
import { startTestServer, type Auth, type TestServer } from '../helpers/server.js';
import { createPostgresConnection } from '../helpers/tenants.js';
import { waitForQueryEnd, waitUntil } from '../helpers/wait.js';
import {
  documentedVerifier,
  signatureParts,
  startReceiver,
  type Delivery,
  type WebhookReceiver,
} from '../helpers/webhook-receiver.js';

const time = testClock();
const verify = documentedVerifier();
let s: TestServer;
let admin: Auth;
let connectionId: string;
let secret: string;
const receivers: WebhookReceiver[] = [];

beforeAll(async () => {
  s = await startTestServer({ QRUN_CONNECTION_CONCURRENCY: '1' }, { clock: time.clock });
  admin = { bearer: s.adminKey };
  connectionId = await createPostgresConnection(s, admin);
  const r = await s.request('POST', '/api/webhook_secret', { auth: admin });
  expect(r.status, r.text).toBe(200);
  secret = r.body.data.secret;
});
afterEach(async () => {
  for (const receiver of receivers.splice(0)) await receiver.close();
});
afterAll(() => s?.close());

async function receiver(): Promise<WebhookReceiver> {
  const started = await startReceiver();
  receivers.push(started);
  return started;
}

async function submit(body: Record<string, unknown>, connection = connectionId): Promise<string> {
  const r = await s.request('POST', `/api/connections/${connection}/query`, { auth: admin, body });
  expect(r.status, r.text).toBe(200);
  return r.body.data.id;
}

/** The clock's now, in Unix seconds, as a receiver's clock would read it. */
const nowSeconds = () => Date.parse(time.clock()) / 1000;

function deliveryRow(taskId: string) {
  return s.qrun.store.db
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('task_id', '=', taskId)
    .executeTakeFirst();
}

/** Waits for the `n`th delivery of the query at the receiver, running the delivery step meanwhile. */
async function nthDelivery(at: WebhookReceiver, id: string, n = 1): Promise<Delivery> {
  const of = () => at.deliveries.filter((d) => d.json?.id === id);
  await waitUntil(
    () => `delivery ${n} of query ${id} (got ${of().length})`,
    async () => {
      if (of().length >= n) return true;
      await s.qrun.deliverer.deliverDue();
      return of().length >= n;
    },
  );
  return of()[n - 1]!;
}

describe('callback_url', () => {
  it('POSTs {id, status, count, error} as JSON when the query is done, signed with the secret', async () => {
    const at = await receiver();
    const id = await submit({
      query: 'select n from generate_series(1, 3) n',
      callback_url: `${at.url}/hook?x=1`,
    });
    const d = await nthDelivery(at, id);
    expect(d.path).toBe('/hook?x=1');
    expect(d.json).toEqual({ id, status: 'done', count: 3, error: null });
    expect(d.headers['content-type']).toBe('application/json');
    expect(d.headers['user-agent']).toMatch(/^qrun-webhooks\//);

    const header = String(d.headers['qrun-signature']);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(Math.abs(signatureParts(header).t - nowSeconds())).toBeLessThan(60);
    // The README's snippet accepts it, and refuses another secret, another body and an old timestamp.
    expect(verify(header, d.body, secret, 300, nowSeconds())).toBe(true);
    expect(verify(header, d.body, `${secret}x`, 300, nowSeconds())).toBe(false);
    expect(verify(header, d.body.replace('"count":3', '"count":4'), secret, 300, nowSeconds())).toBe(false);
    expect(verify(header, d.body, secret, 300, nowSeconds() + 3600)).toBe(false);

    await waitUntil(
      'the delivery recorded as delivered',
      async () => (await deliveryRow(id))?.status === 'delivered',
    );
    expect(await deliveryRow(id)).toMatchObject({ attempts: 1, last_error: null, url: `${at.url}/hook?x=1` });
  });

  it('says failed with the error when the query fails, times out or is canceled before it ran', async () => {
    const at = await receiver();
    const failing = await submit({ query: 'select * from qrun_no_such_table', callback_url: at.url });
    expect((await nthDelivery(at, failing)).json).toEqual({
      id: failing,
      status: 'failed',
      count: null,
      error: expect.stringContaining('qrun_no_such_table'),
    });

    const slow = await submit({ query: 'select pg_sleep(10)', timeout_seconds: 1, callback_url: at.url });
    expect((await nthDelivery(at, slow)).json).toMatchObject({ id: slow, status: 'failed', count: null });
    expect((await nthDelivery(at, slow)).json.error).toMatch(/^timeout/);

    // QRUN_CONNECTION_CONCURRENCY=1: a query behind a running one waits, and is canceled before it runs.
    const blocker = await submit({ query: 'select pg_sleep(60)' });
    await waitUntil('the blocker to run', async () => {
      const r = await s.request('GET', `/api/queries/${blocker}`, { auth: admin });
      return r.body.data.status === 'running';
    });
    const waiting = await submit({ query: 'select 1', callback_url: at.url });
    expect((await s.request('GET', `/api/queries/${waiting}`, { auth: admin })).body.data.status).toBe(
      'created',
    );
    const canceled = await s.request('POST', `/api/queries/${waiting}/cancel`, { auth: admin });
    expect(canceled.body.data.status).toBe('failed');
    expect((await nthDelivery(at, waiting)).json).toEqual({
      id: waiting,
      status: 'failed',
      count: null,
      error: 'canceled',
    });
    await s.request('POST', `/api/queries/${blocker}/cancel`, { auth: admin });
    await waitForQueryEnd(s, admin, blocker);
  });

  it('is sent for a query lost with its worker (the sweeper), and for one whose end was recorded without a delivery (a crash)', async () => {
    const at = await receiver();
    const me = (await s.request('GET', '/api/me', { auth: admin })).body.data;
    const now = time.clock();
    const row = (id: string, changes: Record<string, unknown>) => ({
      id,
      organization_id: me.organization_id,
      owner: `user:${me.id}`,
      connection_id: connectionId,
      sql: 'select 1',
      parameters: '[]',
      timeout_seconds: 60,
      max_rows: null,
      status: 'running' as const,
      error: null,
      error_details: null,
      page_rows: null,
      fields: null,
      schema: null,
      row_count: null,
      page_count: null,
      truncated: 0,
      worker_id: 'a-worker-that-died',
      lease_expires_at: new Date(Date.parse(now) - 60_000).toISOString(),
      cancel_requested: 0,
      created_at: now,
      started_at: now,
      finished_at: null,
      expires_at: null,
      pages_until: null,
      callback_url: at.url,
      ...changes,
    });
    const lost = crypto.randomUUID();
    await s.qrun.store.db.insertInto('query_tasks').values(row(lost, {})).execute();
    await s.qrun.sweeper.sweepOnce();
    expect((await nthDelivery(at, lost)).json).toEqual({
      id: lost,
      status: 'failed',
      count: null,
      error: expect.stringMatching(/^lost/),
    });

    // Ended, but the process stopped before it added the delivery: the delivery loop's look adds it.
    const orphan = crypto.randomUUID();
    await s.qrun.store.db
      .insertInto('query_tasks')
      .values(
        row(orphan, {
          status: 'done',
          row_count: 7,
          page_count: 0,
          fields: '[]',
          schema: '[]',
          lease_expires_at: null,
          finished_at: now,
          expires_at: new Date(Date.parse(now) + 86_400_000).toISOString(),
        }),
      )
      .execute();
    expect(await deliveryRow(orphan)).toBeUndefined();
    // The look runs every 10 seconds of the clock.
    time.advance(11_000);
    expect((await nthDelivery(at, orphan)).json).toEqual({
      id: orphan,
      status: 'done',
      count: 7,
      error: null,
    });
  });

  it('retries with back-off: a receiver that answers 500 twice, then 200, gets three attempts', async () => {
    const at = await receiver();
    at.answers.push(500, 500);
    const id = await submit({ query: 'select 1 as x', callback_url: at.url });
    const first = await nthDelivery(at, id, 1);
    await waitUntil(
      'the first failure to be recorded',
      async () => (await deliveryRow(id))?.last_error !== null,
    );
    const afterFirst = (await deliveryRow(id))!;
    expect(afterFirst).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_error: expect.stringContaining('HTTP 500'),
    });
    // 1 s after the first failure, then 2 s after the second.
    expect(Date.parse(afterFirst.next_attempt_at) - Date.parse(time.clock())).toBeLessThanOrEqual(1000);

    time.advance(1000);
    await nthDelivery(at, id, 2);
    await waitUntil(
      'the second failure',
      async () =>
        (await deliveryRow(id))?.attempts === 2 && (await deliveryRow(id))!.next_attempt_at > time.clock(),
    );
    const afterSecond = (await deliveryRow(id))!;
    expect(Date.parse(afterSecond.next_attempt_at) - Date.parse(time.clock())).toBeGreaterThan(1000);
    expect(Date.parse(afterSecond.next_attempt_at) - Date.parse(time.clock())).toBeLessThanOrEqual(2000);

    time.advance(2000);
    const third = await nthDelivery(at, id, 3);
    await waitUntil('the delivery to be done', async () => (await deliveryRow(id))?.status === 'delivered');
    expect(await deliveryRow(id)).toMatchObject({ attempts: 3, last_error: null });
    // The same body every time, freshly signed.
    expect(third.body).toBe(first.body);
    for (const d of at.deliveries) {
      expect(verify(String(d.headers['qrun-signature']), d.body, secret, 300, nowSeconds())).toBe(true);
    }
    expect(at.deliveries).toHaveLength(3);
  });

  it('gives up an hour after the first attempt', async () => {
    const at = await receiver();
    at.answers.push(...Array<number>(50).fill(503));
    const id = await submit({ query: 'select 1 as x', callback_url: at.url });
    await nthDelivery(at, id, 1);
    await waitUntil('the first failure', async () => (await deliveryRow(id))?.last_error !== null);
    time.advance(3600_000);
    await nthDelivery(at, id, 2);
    await waitUntil('the delivery to be given up', async () => (await deliveryRow(id))?.status === 'failed');
    expect(await deliveryRow(id)).toMatchObject({
      attempts: 2,
      last_error: expect.stringContaining('HTTP 503'),
      finished_at: expect.any(String),
    });
    // Given up: a later pass finds nothing due.
    time.advance(3600_000);
    await s.qrun.deliverer.deliverDue();
    expect((await deliveryRow(id))?.attempts).toBe(2);
  });

  it('after a rotation, signs with the new and the previous secret for 24 hours, then with the new one only', async () => {
    const at = await receiver();
    const rotated = await s.request('POST', '/api/webhook_secret', { auth: admin });
    expect(rotated.status).toBe(200);
    const next: string = rotated.body.data.secret;
    expect(next).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(next).not.toBe(secret);
    const previous = secret;
    secret = next;

    const during = await submit({ query: 'select 1 as x', callback_url: at.url });
    const d1 = await nthDelivery(at, during);
    const h1 = String(d1.headers['qrun-signature']);
    expect(signatureParts(h1).v1).toHaveLength(2);
    expect(verify(h1, d1.body, next, 300, nowSeconds())).toBe(true);
    expect(verify(h1, d1.body, previous, 300, nowSeconds())).toBe(true);
    // The new secret's signature comes first.
    expect(verify(h1.split(',').slice(0, 2).join(','), d1.body, next, 300, nowSeconds())).toBe(true);

    time.advance(24 * 3600_000 + 60_000);
    const after = await submit({ query: 'select 2 as x', callback_url: at.url });
    const d2 = await nthDelivery(at, after);
    const h2 = String(d2.headers['qrun-signature']);
    expect(signatureParts(h2).v1).toHaveLength(1);
    expect(verify(h2, d2.body, next, 300, nowSeconds())).toBe(true);
    expect(verify(h2, d2.body, previous, 300, nowSeconds())).toBe(false);
  });
});
