/**
 * Clean-up (issue 10 item 5), through real HTTP on the deployment under test (files or S3): task rows
 * deleted after their retention, an organization's pages deleted with it, failed page deletes retried,
 * and results that no task owns swept from the result store. The sweeper is run by hand
 * (`sweeper.sweepOnce()`), its own timer set to an hour so that nothing runs between the steps.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ResultStore } from '../../src/results/result-store.js';
import { startTestServer, type Auth, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

const pgConfig = { hostname: '127.0.0.1', port: 5432, database: 'test', username: 'postgres' };
const DAY_MS = 86_400_000;

let s: TestServer;
let admin: Auth;
let connectionId: string;

beforeAll(async () => {
  s = await startTestServer({
    QRUN_PAGE_ROWS: '10',
    QRUN_SWEEP_INTERVAL_SECONDS: '3600',
    // Every sweep makes an orphan pass, so one sweepOnce() covers the whole (small) store.
    QRUN_ORPHAN_SWEEP_INTERVAL_SECONDS: '0',
  });
  admin = { bearer: s.adminKey };
  connectionId = await createConnection(admin);
});
afterAll(() => s?.close());

async function createConnection(auth: Auth): Promise<string> {
  const c = await s.request('POST', '/api/connections', {
    auth,
    body: { name: `pg-${randomUUID()}`, type: 'postgresql', configuration: pgConfig },
  });
  expect(c.status).toBe(200);
  return c.body.data.id;
}

async function submit(query: string, auth: Auth = admin, connection = connectionId): Promise<string> {
  const r = await s.request('POST', `/api/connections/${connection}/query`, { auth, body: { query } });
  expect(r.status).toBe(200);
  return r.body.data.id;
}

/** The task's status in the metadata store, read there so that the HTTP side caches nothing. */
async function storedStatus(id: string): Promise<string | undefined> {
  const row = await s.qrun.store.db
    .selectFrom('query_tasks')
    .select('status')
    .where('id', '=', id)
    .executeTakeFirst();
  return row?.status;
}

function finished(id: string): Promise<string> {
  return waitUntil(
    `query ${id} to finish`,
    async () => {
      const status = await storedStatus(id);
      return status === 'done' || status === 'failed' ? status : undefined;
    },
    { timeoutMs: 30_000 },
  );
}

/**
 * Moves a finished task's expiry (and its finish, and when its pages are due) into the past, as if that
 * time had gone by.
 */
async function backdate(id: string, expiredAgoMs: number): Promise<void> {
  const expiresAt = new Date(Date.now() - expiredAgoMs).toISOString();
  await s.qrun.store.db
    .updateTable('query_tasks')
    .set({ expires_at: expiresAt, finished_at: new Date(Date.parse(expiresAt) - DAY_MS).toISOString() })
    .where('id', '=', id)
    .execute();
  await s.qrun.store.db
    .updateTable('query_tasks')
    .set({ pages_until: expiresAt })
    .where('id', '=', id)
    .where('pages_until', 'is not', null)
    .execute();
}

function pageDeletion(id: string) {
  return s.qrun.store.db
    .selectFrom('page_deletions')
    .selectAll()
    .where('query_id', '=', id)
    .executeTakeFirst();
}

/** Makes the store's deleteResult throw for the ids `fail` picks, until restore() (run after each test). */
let restore: (() => void) | undefined;
function failDeletes(fail: (id: string) => boolean): void {
  const results: ResultStore = s.qrun.results;
  const original = results.deleteResult;
  results.deleteResult = (id) =>
    fail(id) ? Promise.reject(new Error('the disk said no')) : original.call(results, id);
  restore = () => {
    results.deleteResult = original;
  };
}
afterEach(() => {
  restore?.();
  restore = undefined;
});

describe('task retention (QRUN_TASK_RETENTION_DAYS, default 30)', () => {
  it('deletes finished tasks, SQL included, 30 days after their result expired, and keeps younger ones', async () => {
    const marker = randomUUID().slice(0, 8);
    const old = await submit(`select 'retention-old-${marker}' as m from generate_series(1, 15)`);
    const oldFailed = await submit(`select 1/0 as x, 'retention-failed-${marker}' as m`);
    const recent = await submit(`select 'retention-recent-${marker}' as m`);
    expect(await finished(old)).toBe('done');
    expect(await finished(oldFailed)).toBe('failed');
    expect(await finished(recent)).toBe('done');
    expect(await s.pagesExist(old)).toBe(true);
    await backdate(old, 31 * DAY_MS);
    await backdate(oldFailed, 31 * DAY_MS);
    await backdate(recent, 29 * DAY_MS);

    await s.qrun.sweeper.sweepOnce();

    for (const id of [old, oldFailed]) {
      const gone = await s.request('GET', `/api/queries/${id}`, { auth: admin });
      expect(gone.status).toBe(404);
      expect(gone.body.key).toBe('not_found');
      expect(await storedStatus(id)).toBeUndefined();
    }
    expect(await s.pagesExist(old)).toBe(false);
    const withSql = async (text: string) =>
      (
        await s.qrun.store.db
          .selectFrom('query_tasks')
          .select('id')
          .where('sql', 'like', `%${text}%`)
          .execute()
      ).length;
    expect(await withSql(`retention-old-${marker}`)).toBe(0);
    expect(await withSql(`retention-failed-${marker}`)).toBe(0);
    expect(await withSql(`retention-recent-${marker}`)).toBe(1);

    // The younger one's result expired (and was deleted) but the task is still there: 404 expired, saying when.
    const kept = await s.request('GET', `/api/queries/${recent}`, { auth: admin });
    expect(kept.status).toBe(404);
    expect(kept.body.key).toBe('expired');
    expect(kept.body.message).toMatch(
      /^The result of this query expired at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ /,
    );
    expect(await storedStatus(recent)).toBe('done');
    const list = await s.request('GET', '/api/queries?limit=200', { auth: admin });
    const listed = list.body.data.map((q: { id: string }) => q.id);
    expect(listed).toContain(recent);
    expect(listed).not.toContain(old);
    expect(listed).not.toContain(oldFailed);
  });
});

describe('deleting an organization', () => {
  it('deletes the pages of its queries at the next sweep', async () => {
    const partner = { bearer: s.partnerKey };
    const org = await s.request('POST', '/api/organizations', {
      auth: partner,
      body: { name: `doomed-${randomUUID().slice(0, 8)}` },
    });
    const orgId: string = org.body.data.id;
    const user = await s.request('POST', `/api/organizations/${orgId}/users`, {
      auth: partner,
      body: { email: `${randomUUID().slice(0, 8)}@doomed.example`, role: 'admin' },
    });
    const key = await s.request('POST', `/api/organizations/${orgId}/users/${user.body.data.id}/keys`, {
      auth: partner,
    });
    const member = { bearer: key.body.data.value as string };
    const connection = await createConnection(member);
    const id = await submit('select n from generate_series(1, 25) n', member, connection);
    expect(await finished(id)).toBe('done');
    expect(await s.pagesExist(id)).toBe(true);

    expect((await s.request('DELETE', `/api/organizations/${orgId}`, { auth: partner })).status).toBe(204);
    // Queued with the delete itself; the task row went with the organization.
    expect(await pageDeletion(id)).toMatchObject({ query_id: id, attempts: 0 });
    expect(await storedStatus(id)).toBeUndefined();
    expect((await s.request('GET', '/api/me', { auth: member })).status).toBe(401);

    await s.qrun.sweeper.sweepOnce();
    expect(await s.pagesExist(id)).toBe(false);
    expect(await pageDeletion(id)).toBeUndefined();
  });
});

describe('page deletes that fail', () => {
  it('are retried by the sweeper when expiry could not delete; the result reads expired at once', async () => {
    const id = await submit('select n from generate_series(1, 25) n');
    expect(await finished(id)).toBe('done');
    let failures = 1;
    failDeletes((target) => target === id && failures-- > 0);
    await backdate(id, 60_000);

    await s.qrun.sweeper.sweepOnce();
    const expired = await s.request('GET', `/api/queries/${id}`, { auth: admin });
    expect(expired.status).toBe(404);
    expect(expired.body.key).toBe('expired');
    expect(await storedStatus(id)).toBe('done');
    expect(await s.pagesExist(id)).toBe(true);
    const queued = await pageDeletion(id);
    expect(queued).toMatchObject({ attempts: 1 });
    expect(queued?.last_error).toMatch(/the disk said no/);

    await s.qrun.sweeper.sweepOnce();
    expect(await s.pagesExist(id)).toBe(false);
    expect(await pageDeletion(id)).toBeUndefined();
  });

  it('are retried by the sweeper when a failed query could not delete its pages; it still reads failed', async () => {
    let failing: string | undefined;
    // The first delete of any result: the one the worker makes when the query fails.
    failDeletes((target) => {
      if (failing !== undefined) return false;
      failing = target;
      return true;
    });
    // Two pages of 10 rows are stored before row 25 divides by zero.
    const id = await submit('select n, 1 / (n - 25) as x from generate_series(1, 30) n');
    expect(await finished(id)).toBe('failed');
    expect(failing).toBe(id);
    const failed = await s.request('GET', `/api/queries/${id}`, { auth: admin });
    expect(failed.body.data).toMatchObject({ status: 'failed' });
    expect(failed.body.data.error).toMatch(/division by zero/);
    expect(await s.pagesExist(id)).toBe(true);
    expect(await pageDeletion(id)).toMatchObject({ attempts: 1 });

    // Still failing: the attempt is counted and the row stays.
    restore?.();
    failDeletes((target) => target === id);
    await s.qrun.sweeper.sweepOnce();
    expect(await pageDeletion(id)).toMatchObject({ attempts: 2 });
    expect(await s.pagesExist(id)).toBe(true);

    restore?.();
    restore = undefined;
    await s.qrun.sweeper.sweepOnce();
    expect(await s.pagesExist(id)).toBe(false);
    expect(await pageDeletion(id)).toBeUndefined();
  });
});

describe('the orphan sweep', () => {
  it('deletes results no task owns, and leaves those of a running task and of a task that appears meanwhile', async () => {
    // Pages of 10 rows are stored as they come; the last row then sleeps for a minute.
    const running = await submit(
      'select n, case when n = 100 then pg_sleep(60)::text end as s from generate_series(1, 100) n',
    );
    await waitUntil(
      'pages of the running query',
      async () => (await s.pagesExist(running)) && (await storedStatus(running)) === 'running',
      { timeoutMs: 30_000 },
    );
    const orphan = randomUUID();
    await s.qrun.results.putPage(orphan, 0, Buffer.from('[]'));
    await s.qrun.results.putPage(orphan, 1, Buffer.from('[]'));
    // A task row that appears after the store was listed (a restored backup, say): its pages stay.
    const latecomer = randomUUID();
    await s.qrun.results.putPage(latecomer, 0, Buffer.from('[]'));
    const me = await s.request('GET', '/api/me', { auth: admin });
    const results = s.qrun.results;
    const list = results.listResultIds;
    results.listResultIds = async (after, limit) => {
      const ids = await list.call(results, after, limit);
      await insertTask(latecomer, me.body.data.organization_id);
      return ids;
    };
    restore = () => {
      results.listResultIds = list;
    };

    await s.qrun.sweeper.sweepOnce();
    expect(await s.pagesExist(orphan)).toBe(false);
    expect(await s.pagesExist(latecomer)).toBe(true);
    expect(await s.pagesExist(running)).toBe(true);
    expect(await storedStatus(running)).toBe('running');

    const canceled = await s.request('POST', `/api/queries/${running}/cancel`, { auth: admin });
    expect(canceled.status).toBe(200);
    expect(await finished(running)).toBe('failed');
    expect(await s.pagesExist(running)).toBe(false);
    // Once the row is gone, its pages are an orphan like any other.
    restore();
    restore = undefined;
    await s.qrun.store.db.deleteFrom('query_tasks').where('id', '=', latecomer).execute();
    await s.qrun.sweeper.sweepOnce();
    expect(await s.pagesExist(latecomer)).toBe(false);
  });
});

async function insertTask(id: string, organizationId: string): Promise<void> {
  const now = new Date().toISOString();
  await s.qrun.store.db
    .insertInto('query_tasks')
    .values({
      id,
      organization_id: organizationId,
      owner: `organization:${organizationId}`,
      connection_id: randomUUID(),
      sql: 'select 1',
      parameters: '[]',
      timeout_seconds: 60,
      max_rows: null,
      status: 'failed',
      error: 'inserted by the test',
      fields: null,
      schema: null,
      row_count: null,
      page_count: null,
      truncated: 0,
      worker_id: null,
      lease_expires_at: null,
      cancel_requested: 0,
      created_at: now,
      started_at: null,
      finished_at: now,
      expires_at: now,
    })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
}
