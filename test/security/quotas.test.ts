/**
 * One caller must not take the service from everyone else (issue 10, items 1, 2 and 4), tried through
 * real HTTP on the deployment under test:
 * - one organization fills the queue: its own limit answers 429, others still submit;
 * - one organization's backlog of slow queries: another organization's query starts within one turn;
 * - QRUN_ORG_CONCURRENCY holds an organization to its share of the workers;
 * - one key opens many long-polls: beyond the cap a wait answers at once with the current status.
 * Order and outcome are asserted, never how long anything took.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitForQueryEnd } from '../helpers/wait.js';
import { createPostgresConnection, createTenant, submitQuery, type Tenant } from '../helpers/tenants.js';

const servers: TestServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});

async function server(env: Record<string, string>): Promise<TestServer> {
  const s = await startTestServer(env);
  servers.push(s);
  return s;
}

async function cancelAll(s: TestServer, tenant: Tenant, ids: string[]): Promise<void> {
  await Promise.all(ids.map((id) => s.request('POST', `/api/queries/${id}/cancel`, { auth: tenant.admin })));
}

describe("an organization's own queue limit", () => {
  let s: TestServer;
  let a: Tenant;
  let b: Tenant;
  beforeAll(async () => {
    s = await server({ QRUN_ORG_MAX_QUEUED: '3', QRUN_WORKER_CONCURRENCY: '1' });
    a = await createTenant(s, 'queue-a');
    b = await createTenant(s, 'queue-b');
  });

  it('answers 429 too_many_queries beyond it, creates nothing, and leaves other organizations alone', async () => {
    const conn = await createPostgresConnection(s, a.admin);
    const held = [];
    for (let i = 0; i < 3; i++) held.push(await submitQuery(s, a.admin, conn, 'select pg_sleep(60)'));

    const refused = await s.request('POST', `/api/connections/${conn}/query`, {
      auth: a.admin,
      body: { query: 'select 1' },
    });
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ status: 429, key: 'too_many_queries', metadata: { limit: 3 } });
    expect(refused.body.message).toMatch(/3 queries waiting or running/);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const listed = await s.request('GET', '/api/queries', { auth: a.admin });
    expect(listed.body.data.map((q: { id: string }) => q.id).sort()).toEqual([...held].sort());

    // Another organization is not affected by A's full queue.
    const other = await createPostgresConnection(s, b.admin);
    const id = await submitQuery(s, b.admin, other, 'select 1 as one');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);

    // Once A's queries end, A may submit again.
    await cancelAll(s, a, held);
    for (const q of held) await waitForQueryEnd(s, a.admin, q);
    await submitQuery(s, a.admin, conn, 'select 1');
  });
});

describe('sharing the workers between organizations', () => {
  it("one organization's backlog does not starve another: its query starts within one worker slot's turn", async () => {
    const slots = 2;
    const s = await server({
      QRUN_WORKER_CONCURRENCY: String(slots),
      QRUN_CONNECTION_CONCURRENCY: '100',
      QRUN_ORG_MAX_QUEUED: '100',
    });
    const a = await createTenant(s, 'backlog-a');
    const b = await createTenant(s, 'backlog-b');
    const connA = await createPostgresConnection(s, a.admin);
    const connB = await createPostgresConnection(s, b.admin);
    // A's queries never end by themselves: the test frees one worker slot at a time by cancelling one.
    const backlog: string[] = [];
    for (let i = 0; i < 50; i++) backlog.push(await submitQuery(s, a.admin, connA, 'select pg_sleep(600)'));
    type Listed = { id: string; status: string };
    const runningOfA = async () =>
      ((await s.request('GET', '/api/queries?limit=200', { auth: a.admin })).body.data as Listed[]).filter(
        (q) => q.status === 'running',
      );
    const statusOfB = async (id: string) =>
      (await s.request('GET', `/api/queries/${id}`, { auth: b.admin })).body.data.status as string;
    await vi.waitFor(async () => expect((await runningOfA()).length).toBe(slots), { timeout: 30_000 });

    const mine = await submitQuery(s, b.admin, connB, 'select 42 as answer');
    // Free a slot, wait until it is taken again (by A or B), and repeat until B has had its turn.
    let freed = 0;
    while ((await statusOfB(mine)) === 'created' && freed < 10) {
      const [victim] = await runningOfA();
      await s.request('POST', `/api/queries/${victim!.id}/cancel`, { auth: a.admin });
      freed++;
      await vi.waitFor(
        async () => {
          const taken = (await runningOfA()).length + ((await statusOfB(mine)) === 'created' ? 0 : 1);
          expect(taken).toBeGreaterThanOrEqual(slots);
        },
        { timeout: 30_000 },
      );
    }
    // The first slot freed after B came goes to B; scaled out, a task of A that was queued at the same
    // place in its line as B's (BullMQ orders by that place, then by arrival) may take one turn first.
    expect(freed).toBeLessThanOrEqual(2);
    expect((await waitForQueryEnd(s, b.admin, mine)).body.data.status).toBe('done');
    await cancelAll(s, a, backlog);
  });

  it('QRUN_ORG_CONCURRENCY holds an organization to its share, and others run beside it', async () => {
    const s = await server({
      QRUN_WORKER_CONCURRENCY: '4',
      QRUN_CONNECTION_CONCURRENCY: '100',
      QRUN_ORG_CONCURRENCY: '1',
    });
    const a = await createTenant(s, 'share-a');
    const b = await createTenant(s, 'share-b');
    const connA = await createPostgresConnection(s, a.admin);
    const connB = await createPostgresConnection(s, b.admin);
    // A's queries never end by themselves, so what runs is decided by the limit alone.
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await submitQuery(s, a.admin, connA, 'select pg_sleep(600)'));
    const statuses = async () =>
      (
        (await s.request('GET', '/api/queries', { auth: a.admin })).body.data as {
          id: string;
          status: string;
        }[]
      )
        .map((q) => q.status)
        .sort();
    await vi.waitFor(async () => expect(await statuses()).toEqual(['created', 'created', 'running']), {
      timeout: 30_000,
    });
    // Three worker slots are free, yet A's other queries wait; B's query runs meanwhile.
    const other = await submitQuery(s, b.admin, connB, 'select 42 as answer');
    expect((await waitForQueryEnd(s, b.admin, other)).body.data.status).toBe('done');
    expect(await statuses()).toEqual(['created', 'created', 'running']);
    // Ending A's running query lets exactly the next one run.
    const running = (
      (await s.request('GET', '/api/queries', { auth: a.admin })).body.data as {
        id: string;
        status: string;
      }[]
    ).find((q) => q.status === 'running')!;
    await s.request('POST', `/api/queries/${running.id}/cancel`, { auth: a.admin });
    await vi.waitFor(async () => expect(await statuses()).toEqual(['created', 'failed', 'running']), {
      timeout: 30_000,
    });
    await cancelAll(s, a, ids);
  });
});

describe('long-polls per key', () => {
  it('beyond QRUN_MAX_WAITS_PER_KEY a wait answers at once with the current status', async () => {
    const s = await server({ QRUN_MAX_WAITS_PER_KEY: '1' });
    const a = await createTenant(s, 'waits');
    const conn = await createPostgresConnection(s, a.admin);
    const id = await submitQuery(s, a.admin, conn, 'select pg_sleep(60)');
    let firstEnded = false;
    const first = s.request('GET', `/api/queries/${id}?wait=60`, { auth: a.admin }).then((r) => {
      firstEnded = true;
      return r;
    });
    // The first long-poll holds the key's only place before the second one comes.
    await vi.waitFor(() => expect(s.qrun.queries.longPollsOpen).toBe(1), { timeout: 10_000 });
    const second = await s.request('GET', `/api/queries/${id}?wait=60`, { auth: a.admin });
    expect(second.status).toBe(200);
    expect(['created', 'running']).toContain(second.body.data.status);
    // The first one is still waiting: the second did not wait for the query to end.
    expect(firstEnded).toBe(false);
    await s.request('POST', `/api/queries/${id}/cancel`, { auth: a.admin });
    const r = await first;
    expect(r.body.data.status).toBe('failed');
  });
});
