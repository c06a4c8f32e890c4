/**
 * The metadata store itself, below the services: migrations, and every repository, on the store of the
 * deployment under test (SQLite by default, PostgreSQL with `npm run test:scale-out`). The
 * PostgreSQL-only behaviour (concurrent migrators, the pool) always runs against the machine's server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Migrator, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { qrunErrorDetails } from '../../src/core/task-status.js';
import { isoAfter } from '../../src/core/time.js';
import { migrateToLatest, openMetadataStore, type Db, type MetadataStore } from '../../src/store/database.js';
import { migrationProvider } from '../../src/store/migrations/index.js';
import { ApiKeysRepository, type ApiKeyRow } from '../../src/store/repositories/api-keys.js';
import { ConnectionsRepository, type ConnectionRow } from '../../src/store/repositories/connections.js';
import { IdempotencyKeysRepository } from '../../src/store/repositories/idempotency-keys.js';
import { OrganizationsRepository } from '../../src/store/repositories/organizations.js';
import {
  LIST_SQL_PREVIEW,
  QueryTasksRepository,
  type QueryTaskRow,
} from '../../src/store/repositories/query-tasks.js';
import { UsersRepository } from '../../src/store/repositories/users.js';
import { metadataDatabaseUrl, metadataOnPostgres } from '../helpers/deployment.js';
import { createPostgresMetadataDatabase, type MetadataDatabase } from '../helpers/metadata-db.js';
import { waitUntil } from '../helpers/wait.js';

const TABLES = ['organizations', 'users', 'api_keys', 'connections', 'query_tasks', 'idempotency_keys'];
/** Kysely's PostgreSQL adapter takes this advisory lock around migrations (kysely 0.28). */
const KYSELY_MIGRATION_LOCK_ID = '3853314791062309107';

/** Fixed, distinct times make ordering and expiry checks independent of the clock. */
const T0 = '2026-01-02T10:00:00.000Z';
const at = (seconds: number) => isoAfter(T0, seconds * 1000);
/** Ids chosen so their text order is known (the tie-breaker of every listing). */
const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const LOST = qrunErrorDetails('lost');
const CANCELED = qrunErrorDetails('canceled');

async function executedMigrations(db: Db): Promise<{ name: string; timestamp: string }[]> {
  const r = await sql<{
    name: string;
    timestamp: string;
  }>`select name, timestamp from kysely_migration order by name`.execute(db);
  return r.rows;
}

async function rejection(promise: Promise<unknown>): Promise<AppError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}

describe(`metadata store on ${metadataOnPostgres ? 'PostgreSQL' : 'SQLite'}`, () => {
  let dataDir: string;
  let metadata: MetadataDatabase;
  let store: MetadataStore;
  let orgs: OrganizationsRepository;
  let users: UsersRepository;
  let keys: ApiKeysRepository;
  let connections: ConnectionsRepository;
  let tasks: QueryTasksRepository;
  let idempotency: IdempotencyKeysRepository;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'qrun-store-'));
    metadata = await metadataDatabaseUrl(dataDir);
    store = openMetadataStore(metadata.url);
    await migrateToLatest(store.db);
    orgs = new OrganizationsRepository(store.db);
    users = new UsersRepository(store.db);
    keys = new ApiKeysRepository(store.db);
    connections = new ConnectionsRepository(store.db);
    tasks = new QueryTasksRepository(store.db);
    idempotency = new IdempotencyKeysRepository(store.db);
  });
  afterAll(async () => {
    await store?.close();
    await metadata?.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('opens the dialect the switch selects', () => {
    expect(store.dialect).toBe(metadataOnPostgres ? 'postgres' : 'sqlite');
  });

  it('running the migrations again, from this or a second store, is a no-op', async () => {
    const before = await executedMigrations(store.db);
    expect(before.map((m) => m.name)).toEqual([
      '0001-identity-and-connections',
      '0002-query-tasks',
      '0003-limits',
      '0004-polytomic-connections',
      '0005-task-details',
      '0006-webhooks',
    ]);
    await migrateToLatest(store.db);
    const again = openMetadataStore(metadata.url);
    try {
      await migrateToLatest(again.db);
    } finally {
      await again.close();
    }
    expect(await executedMigrations(store.db)).toEqual(before);
    const tables = await store.db.introspection.getTables();
    expect(tables.map((t) => t.name).filter((n) => TABLES.includes(n))).toHaveLength(TABLES.length);
  });

  it('organizations: insert, find, list in creation order, rename, and 409 for a taken name', async () => {
    await orgs.insert({ id: id(2), name: 'beta', created_at: at(1), updated_at: at(1) });
    await orgs.insert({ id: id(1), name: 'acme', created_at: at(1), updated_at: at(1) });
    await orgs.insert({ id: id(3), name: 'gone', created_at: at(0), updated_at: at(0) });
    expect((await orgs.list()).map((o) => o.name)).toEqual(['gone', 'acme', 'beta']);
    expect(await orgs.find(id(1))).toEqual({ id: id(1), name: 'acme', created_at: at(1), updated_at: at(1) });
    expect((await orgs.findByName('beta'))?.id).toBe(id(2));
    expect(await orgs.findByName('Beta')).toBeUndefined();

    // The unique index decides a race past the service's check: the loser gets the service's 409.
    const dup = await rejection(
      orgs.insert({ id: id(9), name: 'acme', created_at: at(2), updated_at: at(2) }),
    );
    expect({ status: dup.status, key: dup.key }).toEqual({ status: 409, key: 'organization_exists' });
    const renamed = await rejection(orgs.rename(id(2), 'acme', at(2)));
    expect(renamed.key).toBe('organization_exists');

    await orgs.rename(id(2), 'bravo', at(3));
    expect(await orgs.find(id(2))).toMatchObject({ name: 'bravo', updated_at: at(3) });
    expect(await orgs.delete(id(3))).toBe(true);
    expect(await orgs.delete(id(3))).toBe(false);
  });

  it('users: insert, scoped find, update, and 409 for a taken email', async () => {
    const base = { organization_id: id(1), role: 'user' as const, created_at: at(1), updated_at: at(1) };
    await users.insert({ ...base, id: id(11), email: 'ann@example.com', role: 'admin' });
    await users.insert({ ...base, id: id(12), email: 'bob@example.com' });
    await users.insert({ ...base, id: id(13), email: 'eve@example.com', organization_id: id(2) });
    expect((await users.listByOrganization(id(1))).map((u) => u.email)).toEqual([
      'ann@example.com',
      'bob@example.com',
    ]);
    expect(await users.find(id(1), id(11))).toMatchObject({ email: 'ann@example.com', role: 'admin' });
    expect(await users.find(id(2), id(11))).toBeUndefined();
    expect((await users.findByEmail('eve@example.com'))?.id).toBe(id(13));

    const dup = await rejection(users.insert({ ...base, id: id(19), email: 'bob@example.com' }));
    expect({ status: dup.status, key: dup.key }).toEqual({ status: 409, key: 'user_exists' });
    expect((await rejection(users.update(id(12), { email: 'ann@example.com' }))).key).toBe('user_exists');

    await users.update(id(12), { role: 'admin', updated_at: at(2) });
    expect(await users.find(id(1), id(12))).toMatchObject({ role: 'admin', updated_at: at(2) });
    expect(await users.delete(id(2), id(12))).toBe(false);
    expect(await users.delete(id(2), id(13))).toBe(true);
  });

  it('api keys: lookup with owner, listings, partner count as a number, revoke, insert-if-absent', async () => {
    const key = (n: number, row: Partial<ApiKeyRow>): ApiKeyRow => ({
      id: id(n),
      kind: 'user',
      organization_id: null,
      user_id: null,
      key_hash: String(n).repeat(64).slice(0, 64),
      key_hint: `qrun_x_${n}…`,
      created_at: at(n),
      revoked_at: null,
      ...row,
    });
    await keys.insert(key(21, { kind: 'user', organization_id: id(1), user_id: id(11) }));
    await keys.insert(key(22, { kind: 'organization', organization_id: id(1) }));
    await keys.insert(key(23, { kind: 'partner' }));

    expect(await keys.findActiveByHash(key(21, {}).key_hash)).toEqual({
      key: key(21, { kind: 'user', organization_id: id(1), user_id: id(11) }),
      organizationName: 'acme',
      userEmail: 'ann@example.com',
      userRole: 'admin',
    });
    expect(await keys.findActiveByHash(key(22, {}).key_hash)).toMatchObject({
      organizationName: 'acme',
      userEmail: null,
      userRole: null,
    });
    expect((await keys.listForOrganization(id(1))).map((k) => k.id)).toEqual([id(22)]);
    expect((await keys.listForUser(id(11))).map((k) => k.id)).toEqual([id(21)]);
    expect((await keys.find(id(23)))?.kind).toBe('partner');

    const partners = await keys.countActivePartnerKeys();
    expect(partners).toBe(1);
    expect(typeof partners).toBe('number');
    // A partner key from configuration, registered by several processes at once: one insert wins.
    expect(await keys.insertIfAbsent(key(24, { kind: 'partner' }))).toBe(true);
    expect(await keys.insertIfAbsent(key(25, { kind: 'partner', key_hash: key(24, {}).key_hash }))).toBe(
      false,
    );
    expect(await keys.countActivePartnerKeys()).toBe(2);

    expect(await keys.revoke(id(23), at(30))).toBe(true);
    expect(await keys.revoke(id(23), at(31))).toBe(false);
    expect(await keys.findActiveByHash(key(23, {}).key_hash)).toBeUndefined();
    expect((await keys.findByHash(key(23, {}).key_hash))?.revoked_at).toBe(at(30));
    expect(await keys.countActivePartnerKeys()).toBe(1);
  });

  it('connections: insert, scoped find, update, delete', async () => {
    const row: ConnectionRow = {
      id: id(31),
      organization_id: id(1),
      name: 'warehouse',
      type: 'postgresql',
      configuration: JSON.stringify({ hostname: 'db', password: 'enc:v1:abc' }),
      status: 'healthy',
      status_error: null,
      created_at: at(1),
      updated_at: at(1),
      created_by: JSON.stringify({ id: id(11), name: 'ada@example.com', type: 'user' }),
      updated_by: null,
      healthcheck_interval_seconds: null,
      healthcheck_due_at: null,
      healthcheck_running_until: null,
    };
    await connections.insert(row);
    await connections.insert({ ...row, id: id(32), name: 'other', organization_id: id(2) });
    expect(await connections.listByOrganization(id(1))).toEqual([row]);
    expect(await connections.find(id(2), id(31))).toBeUndefined();
    expect(await connections.findById(id(31))).toEqual(row);
    await connections.update(id(31), { status: 'error', status_error: 'down', updated_at: at(2) });
    expect(await connections.find(id(1), id(31))).toMatchObject({ status: 'error', status_error: 'down' });
    expect(await connections.delete(id(1), id(32))).toBe(false);
    expect(await connections.delete(id(2), id(32))).toBe(true);
  });

  describe('query tasks', () => {
    const owner = `user:${id(11)}`;
    const task = (n: number, row: Partial<QueryTaskRow> = {}): QueryTaskRow => ({
      id: id(n),
      organization_id: id(1),
      owner,
      connection_id: id(31),
      sql: 'select $1',
      parameters: '[1]',
      timeout_seconds: 60,
      max_rows: null,
      page_rows: null,
      status: 'created',
      error: null,
      error_details: null,
      callback_url: null,
      fields: null,
      schema: null,
      row_count: null,
      page_count: null,
      truncated: 0,
      worker_id: null,
      lease_expires_at: null,
      cancel_requested: 0,
      created_at: at(n),
      started_at: null,
      finished_at: null,
      expires_at: null,
      pages_until: null,
      ...row,
    });
    // Beyond 32 bits: stored as bigint, read back as a number on both dialects.
    const BIG = 2 ** 40 + 1;

    it('insert and find keep every column, bigints as numbers', async () => {
      const row = task(41, { max_rows: BIG, page_rows: 250 });
      await tasks.insert(row);
      const found = await tasks.find(id(41));
      expect(found).toEqual(row);
      expect(typeof found?.max_rows).toBe('number');
      expect(typeof found?.timeout_seconds).toBe('number');
    });

    it('claim, lease, cancel request and finish are conditional on the state', async () => {
      expect(await tasks.claim(id(41), 'w1', at(100), at(130))).toBe(true);
      expect(await tasks.claim(id(41), 'w2', at(100), at(130))).toBe(false);
      expect(await tasks.renewLease(id(41), 'w2', at(140))).toEqual({ held: false, cancelRequested: false });
      expect(await tasks.renewLease(id(41), 'w1', at(140))).toEqual({ held: true, cancelRequested: false });
      expect(await tasks.requestCancel(id(41))).toBe(true);
      expect(await tasks.renewLease(id(41), 'w1', at(150))).toEqual({ held: true, cancelRequested: true });
      expect(await tasks.finishFailed(id(41), 'w2', 'nope', LOST, at(151), at(200))).toBe(false);

      const done = {
        fields: ['a', 'b'],
        schema: [{ name: 'a', type: 'int8' }],
        rowCount: BIG,
        pageCount: 3,
        truncated: true,
        finishedAt: at(160),
        expiresAt: at(1000),
      };
      expect(await tasks.finishDone(id(41), 'w2', done)).toBe(false);
      expect(await tasks.finishDone(id(41), 'w1', done)).toBe(true);
      expect(await tasks.finishDone(id(41), 'w1', done)).toBe(false);
      const found = await tasks.find(id(41));
      expect(found).toMatchObject({
        status: 'done',
        row_count: BIG,
        page_count: 3,
        truncated: 1,
        cancel_requested: 1,
        worker_id: 'w1',
        started_at: at(100),
        finished_at: at(160),
        expires_at: at(1000),
        pages_until: at(1000),
        lease_expires_at: null,
        fields: '["a","b"]',
      });
      expect(typeof found?.row_count).toBe('number');
      expect(await tasks.requestCancel(id(41))).toBe(false);
    });

    it('lists by owner newest first with a (created_at, id) cursor, ties broken by id', async () => {
      // 43 and 44 share a creation time: the id decides.
      await tasks.insert(task(42));
      await tasks.insert(task(43, { created_at: at(44) }));
      await tasks.insert(task(44));
      await tasks.insert(task(45, { owner: `organization:${id(1)}` }));
      const all = (await tasks.listByOwner(owner, 10)).map((t) => t.id);
      expect(all).toEqual([id(44), id(43), id(42), id(41)]);
      const first = await tasks.listByOwner(owner, 2);
      const last = first[first.length - 1]!;
      const rest = await tasks.listByOwner(owner, 10, { createdAt: last.created_at, id: last.id });
      expect([...first, ...rest].map((t) => t.id)).toEqual(all);
      expect(typeof (await tasks.listByOwner(owner, 10))[3]?.row_count).toBe('number');
      // Lists and status reads never load the SQL or its parameters (up to a MiB each): a list carries
      // a preview of at most LIST_SQL_PREVIEW + 1 characters, a view neither.
      await tasks.insert(
        task(46, { sql: `select '${'é'.repeat(5000)}'`, parameters: `[${'1,'.repeat(9999)}1]` }),
      );
      const [newest] = await tasks.listByOwner(owner, 1);
      expect(newest?.id).toBe(id(46));
      expect(newest).not.toHaveProperty('sql');
      expect(newest).not.toHaveProperty('parameters');
      expect(newest?.sql_preview).toBe(`select '${'é'.repeat(LIST_SQL_PREVIEW + 1 - 8)}`);
      const view = await tasks.findView(id(46));
      expect(view).toMatchObject({ id: id(46), status: 'created' });
      expect(view).not.toHaveProperty('sql');
      expect(view).not.toHaveProperty('parameters');
      await tasks.delete(id(46));
      // Only tasks created before the given time: the sweeper leaves freshly queued ones alone.
      expect((await tasks.listCreated(10, at(44))).map((t) => t.id)).toEqual([id(42)]);
      expect(await tasks.listCreated(10, at(1000))).toEqual([
        { id: id(42), connection_id: id(31), organization_id: id(1) },
        { id: id(43), connection_id: id(31), organization_id: id(1) },
        { id: id(44), connection_id: id(31), organization_id: id(1) },
        { id: id(45), connection_id: id(31), organization_id: id(1) },
      ]);
    });

    it('finds expired leases and results by comparing times as text', async () => {
      expect(await tasks.cancelCreated(id(45), 'canceled', CANCELED, at(50), at(500))).toBe(true);
      expect(await tasks.cancelCreated(id(45), 'canceled', CANCELED, at(50), at(500))).toBe(false);
      expect(await tasks.find(id(45))).toMatchObject({
        status: 'failed',
        error: 'canceled',
        error_details: JSON.stringify(CANCELED),
      });
      expect(await tasks.claim(id(42), 'w1', at(60), at(90))).toBe(true);
      expect(await tasks.claim(id(43), 'w1', at(60), at(120))).toBe(true);

      // A millisecond either side of the lease's end.
      expect(await tasks.listLeaseExpired(isoAfter(at(90), -1), 10)).toEqual([]);
      expect(await tasks.listLeaseExpired(isoAfter(at(90), 1), 10)).toEqual([
        { id: id(42), worker_id: 'w1' },
      ]);
      expect((await tasks.listRunning(10)).map((t) => t.id).sort()).toEqual([id(42), id(43)]);
      expect(await tasks.markLost(id(42), 'w2', 'lost', LOST, at(91), at(500))).toBe(false);
      expect(await tasks.markLost(id(42), 'w1', 'lost', LOST, at(91), at(500))).toBe(true);
      expect(await tasks.find(id(42))).toMatchObject({
        status: 'failed',
        error: 'lost',
        error_details: JSON.stringify(LOST),
        lease_expires_at: null,
      });

      const boom = { code: 'division_by_zero', sqlstate: '22012', retryable: false, position: 8 };
      expect(await tasks.finishFailed(id(43), 'w1', 'boom', boom, at(70), at(999))).toBe(true);
      expect(await tasks.findView(id(43))).toMatchObject({ error_details: JSON.stringify(boom) });
      expect(await tasks.countByStatus('failed')).toBe(3);
      expect(typeof (await tasks.countByStatus('failed'))).toBe('number');

      // Pages are due once the result expires; the task stays done, its pages marked deleted.
      expect(await tasks.listPagesDue(at(1000), 10)).toEqual([]);
      expect(await tasks.listPagesDue(isoAfter(at(1000), 1), 10)).toEqual([id(41)]);
      await tasks.markPagesDeleted(id(41));
      expect(await tasks.find(id(41))).toMatchObject({ status: 'done', pages_until: null, page_count: 3 });
      expect(await tasks.listPagesDue(isoAfter(at(1000), 1), 10)).toEqual([]);
      expect(await tasks.countByStatus('done')).toBe(1);

      await tasks.delete(id(44));
      expect(await tasks.find(id(44))).toBeUndefined();
    });

    it('markLost matches a task claimed by no worker', async () => {
      await tasks.insert(task(46, { status: 'running', created_at: at(46) }));
      expect(await tasks.markLost(id(46), 'w1', 'lost', LOST, at(47), at(500))).toBe(false);
      expect(await tasks.markLost(id(46), null, 'lost', LOST, at(47), at(500))).toBe(true);
    });

    it("counts the organization's waiting tasks submitted before a task (queue_position)", async () => {
      // 61 and 62 share a creation time (the id decides); 63 is another organization's; 64 is running.
      await tasks.insert(task(60, { created_at: at(60) }));
      await tasks.insert(task(61, { created_at: at(61) }));
      await tasks.insert(task(62, { created_at: at(61) }));
      await tasks.insert(task(63, { created_at: at(60), organization_id: id(2) }));
      await tasks.insert(task(64, { created_at: at(59), status: 'running' }));
      await tasks.insert(task(65, { created_at: at(65) }));
      const ahead = async (n: number) => tasks.countWaitingAhead((await tasks.findView(id(n)))!);
      expect(await ahead(60)).toBe(0);
      expect(await ahead(61)).toBe(1);
      expect(await ahead(62)).toBe(2);
      expect(await ahead(63)).toBe(0);
      expect(await ahead(65)).toBe(3);
      expect(typeof (await ahead(65))).toBe('number');
      for (const n of [60, 61, 62, 63, 64, 65]) await tasks.delete(id(n));
    });
  });

  it('migration 0005 turns unknown tasks into done (expired) and failed (lost), and classes old failures', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'qrun-store-0005-'));
    const url = await metadataDatabaseUrl(dir);
    const old = openMetadataStore(url.url);
    try {
      const migrator = new Migrator({ db: old.db, provider: migrationProvider });
      const { error } = await migrator.migrateTo('0003-limits');
      expect(error).toBeUndefined();
      await old.db
        .insertInto('organizations')
        .values({ id: id(1), name: 'acme', created_at: at(0), updated_at: at(0) })
        .execute();
      const row = (n: number, values: Record<string, unknown>) => ({
        id: id(n),
        organization_id: id(1),
        owner: 'user:x',
        connection_id: id(31),
        sql: 'select 1',
        parameters: '[]',
        timeout_seconds: 60,
        created_at: at(n),
        ...values,
      });
      // The old schema has neither error_details nor page_rows: inserted as the old code did.
      const oldDb = old.db as any;
      await oldDb
        .insertInto('query_tasks')
        .values([
          // Done, then expired by the old sweeper: status unknown, fields kept, pages gone.
          row(71, {
            status: 'unknown',
            error: 'expired: gone',
            fields: '["n"]',
            page_count: 0,
            expires_at: at(10),
          }),
          // Lost with its worker.
          row(72, { status: 'unknown', error: 'lost: the worker stopped', expires_at: at(500) }),
          row(73, { status: 'done', fields: '["n"]', page_count: 2, expires_at: at(900) }),
          row(74, { status: 'failed', error: 'canceled', expires_at: at(900) }),
          row(75, { status: 'failed', error: 'timeout: the query ran longer…', expires_at: at(900) }),
          row(76, { status: 'failed', error: 'interrupted: qrun was shut down…', expires_at: at(900) }),
          row(77, { status: 'failed', error: 'relation "x" does not exist', expires_at: at(900) }),
        ])
        .execute();
      await migrateToLatest(old.db);
      const migrated = new QueryTasksRepository(old.db);
      const after = async (n: number) => {
        const t = await migrated.find(id(n));
        return {
          status: t?.status,
          error: t?.error,
          details: t?.error_details ? JSON.parse(t.error_details) : null,
          pages_until: t?.pages_until,
          page_rows: t?.page_rows,
        };
      };
      expect(await after(71)).toEqual({
        status: 'done',
        error: null,
        details: null,
        pages_until: null,
        page_rows: null,
      });
      expect(await after(72)).toMatchObject({
        status: 'failed',
        error: 'lost: the worker stopped',
        details: LOST,
      });
      // A done result still keeping its pages gets them deleted when it expires.
      expect(await after(73)).toMatchObject({ status: 'done', pages_until: at(900) });
      expect(await after(74)).toMatchObject({ status: 'failed', details: CANCELED });
      expect((await after(75)).details).toEqual(qrunErrorDetails('timeout'));
      expect((await after(76)).details).toEqual(qrunErrorDetails('interrupted'));
      expect((await after(77)).details).toBeNull();
      expect(await migrated.countByStatus('done')).toBe(2);
    } finally {
      await old.close();
      await url.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('idempotency keys: the first writer wins, responses round trip, expired ones are counted out', async () => {
    const row = {
      owner: 'user:x',
      key: 'abcdefgh',
      request_hash: 'h1',
      created_at: at(0),
      expires_at: at(10),
    };
    expect(await idempotency.tryInsertPending(row)).toBe(true);
    expect(await idempotency.tryInsertPending({ ...row, request_hash: 'h2' })).toBe(false);
    expect(await idempotency.find('user:x', 'abcdefgh')).toEqual({
      ...row,
      state: 'pending',
      response_status: null,
      response_body: null,
    });
    await idempotency.complete('user:x', 'abcdefgh', 409, '{"key":"x"}');
    expect(await idempotency.find('user:x', 'abcdefgh')).toMatchObject({
      state: 'done',
      response_status: 409,
      response_body: '{"key":"x"}',
    });
    expect(await idempotency.tryInsertPending({ ...row, key: 'other-key', expires_at: at(20) })).toBe(true);
    expect(await idempotency.tryInsertPending({ ...row, key: 'third-key', expires_at: at(30) })).toBe(true);
    await idempotency.delete('user:x', 'third-key');
    expect(await idempotency.deleteExpired(at(10))).toBe(0);
    const deleted = await idempotency.deleteExpired(at(25));
    expect(deleted).toBe(2);
    expect(typeof deleted).toBe('number');
    expect(await idempotency.find('user:x', 'other-key')).toBeUndefined();
  });

  it('deleting an organization deletes its users, keys, connections and queries', async () => {
    expect(await orgs.delete(id(1))).toBe(true);
    expect(await users.listByOrganization(id(1))).toEqual([]);
    expect(await keys.find(id(21))).toBeUndefined();
    expect(await keys.find(id(22))).toBeUndefined();
    expect(await connections.findById(id(31))).toBeUndefined();
    expect(await tasks.find(id(41))).toBeUndefined();
    // The partner keys belong to no organization.
    expect(await keys.countActivePartnerKeys()).toBe(1);
  });
});

describe('PostgreSQL metadata store', () => {
  const databases: MetadataDatabase[] = [];
  const stores: MetadataStore[] = [];
  const fresh = async () => {
    const database = await createPostgresMetadataDatabase();
    databases.push(database);
    return database;
  };
  const open = (url: string, poolSize?: number) => {
    const store = openMetadataStore(url, poolSize === undefined ? {} : { poolSize });
    stores.push(store);
    return store;
  };
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    for (const d of databases) await d.cleanup();
  });

  it('three processes migrating a new database at once: each migration runs once, none fails', async () => {
    const { url } = await fresh();
    // Separate Kysely instances and pools, as separate processes would have; one with the single
    // connection `qrun migrate` uses.
    const migrators = [open(url, 1), open(url), open(url)];
    await Promise.all(migrators.map((s) => migrateToLatest(s.db)));
    const db = migrators[0]!.db;
    expect((await executedMigrations(db)).map((m) => m.name)).toEqual([
      '0001-identity-and-connections',
      '0002-query-tasks',
      '0003-limits',
      '0004-polytomic-connections',
      '0005-task-details',
      '0006-webhooks',
    ]);
    const tables = await sql<{ n: number }>`
      select count(*) as n from information_schema.tables
      where table_schema = 'public' and table_name in (${sql.join(TABLES)})`.execute(db);
    expect(tables.rows[0]?.n).toBe(TABLES.length);
  });

  it('a migrator waits while another process holds the migration lock', async () => {
    const { url } = await fresh();
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query(`select pg_advisory_lock(${KYSELY_MIGRATION_LOCK_ID})`);
      const store = open(url);
      let settled = false;
      const migrating = migrateToLatest(store.db).finally(() => (settled = true));
      // Wait until the migrator is blocked on the advisory lock (a state read, never a timed assertion).
      await waitUntil(
        'the migrator to wait on the advisory lock',
        async () => {
          // Finishing while the lock is held would mean Kysely no longer takes it: migrateToLatest would
          // then need a pg_advisory_lock of its own.
          expect(settled, 'migrations ran while the lock was held').toBe(false);
          const r = await holder.query<{ n: string }>(
            `select count(*) as n from pg_stat_activity
             where datname = current_database() and application_name = 'qrun-metadata'
               and wait_event_type = 'Lock' and wait_event = 'advisory'`,
          );
          return r.rows[0]?.n === '1';
        },
        { intervalMs: 20 },
      );
      const before = await holder.query(`select to_regclass('public.organizations') as t`);
      expect(before.rows[0].t).toBeNull();
      await holder.query(`select pg_advisory_unlock(${KYSELY_MIGRATION_LOCK_ID})`);
      await migrating;
      const after = await holder.query(`select to_regclass('public.query_tasks') as t`);
      expect(after.rows[0].t).toBe('query_tasks');
    } finally {
      await holder.end();
    }
  });

  it('takes postgres:// and postgresql:// URLs, names its connections, reads int8 as numbers', async () => {
    const { url } = await fresh();
    for (const u of [url, url.replace(/^postgres:/, 'postgresql:')]) {
      const store = open(u);
      expect(store.dialect).toBe('postgres');
      const r = await sql<{
        app: string;
        n: number;
        big: number;
      }>`select current_setting('application_name') as app, count(*) as n, 4294967296::int8 as big`.execute(
        store.db,
      );
      expect(r.rows).toEqual([{ app: 'qrun-metadata', n: 1, big: 4294967296 }]);
    }
    // The int8 parser belongs to the store's pool only: pg's defaults, which the PostgreSQL connector
    // relies on, are untouched.
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      expect((await client.query('select 1::int8 as n')).rows).toEqual([{ n: '1' }]);
    } finally {
      await client.end();
    }
  });

  it('refuses other URL schemes', () => {
    expect(() => openMetadataStore('mysql://localhost/qrun')).toThrow(
      /Unsupported metadata store URL: mysql:/,
    );
  });

  it('survives its idle connections being terminated (server restart, failover)', async () => {
    const { url } = await fresh();
    const errors: Error[] = [];
    const store = openMetadataStore(url, { onPoolError: (err) => errors.push(err) });
    stores.push(store);
    await sql`select 1`.execute(store.db);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query(
        `select pg_terminate_backend(pid) from pg_stat_activity
         where datname = current_database() and application_name = 'qrun-metadata'`,
      );
    } finally {
      await admin.end();
    }
    // The idle connection reports its end to the pool (not as an unhandled 'error' that kills the process).
    await waitUntil('the pool to report the terminated connection', () => errors.length > 0, {
      intervalMs: 20,
    });
    const r = await sql<{ one: number }>`select 1 as one`.execute(store.db);
    expect(r.rows).toEqual([{ one: 1 }]);
  });
});
