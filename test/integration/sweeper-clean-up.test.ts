/**
 * The sweeper's clean-up steps on their own, with a clock of the test's: the retention cut-off to the
 * millisecond, the orphan pass's bounded batches, its resumption and its interval, and the queueing of
 * failed deletes. On the deployment under test's metadata and result stores (SQLite and files, or
 * PostgreSQL and S3 on the scale-out pass).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.js';
import { qrunErrorDetails } from '../../src/core/task-status.js';
import { LocalTaskEvents } from '../../src/events/task-events.js';
import type { ResultStore } from '../../src/results/result-store.js';
import { migrateToLatest, openMetadataStore, type MetadataStore } from '../../src/store/database.js';
import { IdempotencyKeysRepository } from '../../src/store/repositories/idempotency-keys.js';
import { OrganizationsRepository } from '../../src/store/repositories/organizations.js';
import { PageDeletionsRepository } from '../../src/store/repositories/page-deletions.js';
import { QueryTasksRepository, type QueryTaskRow } from '../../src/store/repositories/query-tasks.js';
import { deletePages } from '../../src/worker/page-cleanup.js';
import { Sweeper, type SweeperOptions } from '../../src/worker/sweeper.js';
import { deploymentEnv, openResultStore, type DeploymentEnv } from '../helpers/deployment.js';

const DAY_MS = 86_400_000;
const log = createLogger('silent');

let dataDir: string;
let deployment: DeploymentEnv;
let store: MetadataStore;
let results: ResultStore;
let tasks: QueryTasksRepository;
let pageDeletions: PageDeletionsRepository;
let organizationId: string;
let clock = Date.parse('2030-01-01T00:00:00.000Z');
const now = () => new Date(clock).toISOString();

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'qrun-sweeper-'));
  deployment = await deploymentEnv(dataDir);
  store = openMetadataStore(deployment.env.QRUN_DATABASE_URL!);
  await migrateToLatest(store.db);
  results = openResultStore({ QRUN_DATA_DIR: dataDir, ...deployment.env });
  tasks = new QueryTasksRepository(store.db);
  pageDeletions = new PageDeletionsRepository(store.db);
  organizationId = randomUUID();
  await new OrganizationsRepository(store.db).insert({
    id: organizationId,
    name: 'sweeper',
    created_at: now(),
    updated_at: now(),
  });
});

afterAll(async () => {
  await results?.close();
  await store?.close();
  await deployment?.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

beforeEach(async () => {
  clock = Date.parse('2030-01-01T00:00:00.000Z');
  // Each test starts from an empty store.
  let after: string | undefined;
  for (;;) {
    const ids = await results.listResultIds(after, 1000);
    for (const id of ids) await results.deleteResult(id);
    if (ids.length < 1000) break;
    after = ids.at(-1);
  }
  await store.db.deleteFrom('query_tasks').execute();
  await store.db.deleteFrom('page_deletions').execute();
});

function sweeper(options: Partial<SweeperOptions> = {}, resultStore: ResultStore = results): Sweeper {
  return new Sweeper(
    {
      tasks,
      idempotency: new IdempotencyKeysRepository(store.db),
      pageDeletions,
      results: resultStore,
      events: new LocalTaskEvents(),
      dispatcher: undefined,
      log,
    },
    {
      intervalSeconds: 10,
      resultTtlSeconds: 60,
      taskRetentionDays: 30,
      orphanSweepIntervalSeconds: 600,
      now,
      ...options,
    },
  );
}

function task(id: string, row: Partial<QueryTaskRow>): QueryTaskRow {
  return {
    id,
    organization_id: organizationId,
    owner: `organization:${organizationId}`,
    connection_id: randomUUID(),
    sql: 'select 1',
    parameters: '[]',
    timeout_seconds: 60,
    max_rows: null,
    page_rows: null,
    status: 'created',
    error: null,
    error_details: null,
    fields: null,
    schema: null,
    row_count: null,
    page_count: null,
    truncated: 0,
    worker_id: null,
    lease_expires_at: null,
    cancel_requested: 0,
    created_at: now(),
    started_at: null,
    finished_at: null,
    expires_at: null,
    // As finishDone records it: a done task's pages are due when it expires.
    pages_until: row.status === 'done' ? (row.expires_at ?? null) : null,
    ...row,
  };
}

async function exists(id: string): Promise<boolean> {
  return (await tasks.existingIds([id])).has(id);
}

describe('task retention', () => {
  it('deletes failed and expired done tasks once their result expired 30 days ago, not a millisecond before', async () => {
    const at = (ms: number) => new Date(clock + ms).toISOString();
    const failed = randomUUID();
    const lost = randomUUID();
    const running = randomUUID();
    await tasks.insert(task(failed, { status: 'failed', expires_at: at(0) }));
    // A done task whose pages the expiry step has already deleted.
    await tasks.insert(task(lost, { status: 'done', expires_at: at(1), pages_until: null }));
    await tasks.insert(task(running, { status: 'running', worker_id: 'w', lease_expires_at: at(1e12) }));
    const s = sweeper();

    clock += 30 * DAY_MS;
    await s.sweepOnce();
    expect(await exists(failed)).toBe(true);
    clock += 1;
    await s.sweepOnce();
    expect(await exists(failed)).toBe(false);
    expect(await exists(lost)).toBe(true);
    clock += 1;
    await s.sweepOnce();
    expect(await exists(lost)).toBe(false);
    expect(await exists(running)).toBe(true);
  });

  it('expires a done task long past its expiry first (pages deleted), then deletes it in the same sweep', async () => {
    const done = randomUUID();
    await tasks.insert(
      task(done, { status: 'done', page_count: 1, expires_at: new Date(clock - 31 * DAY_MS).toISOString() }),
    );
    await results.putPage(done, 0, Buffer.from('[]'));
    await sweeper().sweepOnce();
    expect(await exists(done)).toBe(false);
    expect(await results.getPage(done, 0)).toBeUndefined();
  });
});

describe('the orphan pass', () => {
  it('looks at a bounded batch per sweep, resumes where it stopped, then waits for its interval', async () => {
    const orphans = Array.from({ length: 7 }, () => randomUUID()).sort();
    for (const id of orphans) await results.putPage(id, 0, Buffer.from('[]'));
    const owned = randomUUID();
    // Running, with a lease far ahead: the sweep must leave it (and its pages) alone.
    const leaseUntil = new Date(clock + 1e12).toISOString();
    await tasks.insert(task(owned, { status: 'running', worker_id: 'w', lease_expires_at: leaseUntil }));
    await results.putPage(owned, 0, Buffer.from('[]'));
    const listings: (string | undefined)[] = [];
    const watched: ResultStore = Object.create(results) as ResultStore;
    watched.listResultIds = (after, limit) => {
      listings.push(after);
      return results.listResultIds(after, limit);
    };
    const s = sweeper({ orphanBatch: 3 }, watched);
    const left = async () => {
      const stored = await results.listResultIds(undefined, 1000);
      return orphans.filter((id) => stored.includes(id));
    };

    const all = [...orphans, owned].sort();
    await s.sweepOnce();
    expect(listings).toEqual([undefined]);
    expect(await left()).toEqual(orphans.filter((id) => !all.slice(0, 3).includes(id)));
    await s.sweepOnce();
    expect(listings).toEqual([undefined, all[2]]);
    expect(await left()).toEqual(orphans.filter((id) => !all.slice(0, 6).includes(id)));
    await s.sweepOnce();
    expect(listings).toEqual([undefined, all[2], all[5]]);
    expect(await left()).toEqual([]);
    expect(await results.getPage(owned, 0)).toBeDefined();

    // The pass is over: the next one starts ten minutes after this one started, not before.
    const late = randomUUID();
    await results.putPage(late, 0, Buffer.from('[]'));
    clock += 599_999;
    await s.sweepOnce();
    expect(listings).toHaveLength(3);
    expect(await results.getPage(late, 0)).toBeDefined();
    clock += 1;
    await s.sweepOnce();
    expect(listings).toEqual([undefined, all[2], all[5], undefined]);
    expect(await results.getPage(late, 0)).toBeUndefined();
  });
});

describe('failed page deletes', () => {
  it('are queued, counted on every failure, and forgotten once a retry deleted the pages', async () => {
    const id = randomUUID();
    await results.putPage(id, 0, Buffer.from('[]'));
    const failing: ResultStore = Object.create(results) as ResultStore;
    failing.deleteResult = () => Promise.reject(new Error('no such luck'));
    const deps = { results: failing, pageDeletions, log };
    expect(await deletePages(deps, id)).toBe(false);
    expect(await deletePages(deps, id)).toBe(false);
    expect(await pageDeletions.find(id)).toMatchObject({ attempts: 2, last_error: 'no such luck' });

    // The retry fails, and so does the orphan pass's delete (no task owns the result): two more.
    await sweeper({}, failing).sweepOnce();
    expect(await pageDeletions.find(id)).toMatchObject({ attempts: 4 });
    await sweeper().sweepOnce();
    expect(await pageDeletions.find(id)).toBeUndefined();
    expect(await results.getPage(id, 0)).toBeUndefined();
  });

  it('never stop the sweep: a lost task is marked and a done one expires while the store refuses deletes', async () => {
    const lost = randomUUID();
    const expired = randomUUID();
    await tasks.insert(
      task(lost, { status: 'running', worker_id: 'w', lease_expires_at: new Date(clock - 1).toISOString() }),
    );
    await tasks.insert(
      task(expired, { status: 'done', page_count: 1, expires_at: new Date(clock - 1).toISOString() }),
    );
    for (const id of [lost, expired]) await results.putPage(id, 0, Buffer.from('[]'));
    const failing: ResultStore = Object.create(results) as ResultStore;
    failing.deleteResult = () => Promise.reject(new Error('store down'));
    failing.listResultIds = () => Promise.reject(new Error('store down'));

    await sweeper({}, failing).sweepOnce();
    const rows = await store.db
      .selectFrom('query_tasks')
      .select(['id', 'status', 'error_details', 'pages_until'])
      .execute();
    expect(Object.fromEntries(rows.map((r) => [r.id, r]))).toEqual({
      [lost]: {
        id: lost,
        status: 'failed',
        error_details: JSON.stringify(qrunErrorDetails('lost')),
        pages_until: null,
      },
      // Expired results stay done (the API answers 404 expired); their pages are marked deleted.
      [expired]: { id: expired, status: 'done', error_details: null, pages_until: null },
    });
    expect((await pageDeletions.listDue(10)).map((r) => r.query_id).sort()).toEqual([lost, expired].sort());

    await sweeper().sweepOnce();
    expect(await pageDeletions.count()).toBe(0);
    for (const id of [lost, expired]) expect(await results.getPage(id, 0)).toBeUndefined();
  });
});
