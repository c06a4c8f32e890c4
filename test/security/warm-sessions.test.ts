/**
 * Attack: read what an earlier query left in a reused database session. qrun keeps the PostgreSQL session
 * (and the SQLite worker process) of a finished query warm for the next query on the same stored
 * connection (src/connectors/warm-sessions.ts).
 * A user (of this organization, or of another one with a connection to the same server and role) tries to
 * find another query's settings, temporary tables, prepared statements, role or open transaction there.
 * Defences: sessions are kept per organization and stored connection, and reset (DISCARD ALL, qrun's
 * settings again) before reuse; a session left inside a transaction, or whose statement was stopped, is
 * ended instead; deleting a connection ends its warm sessions.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busySqliteWorkers } from '../helpers/sqlite-fixture.js';
import { startTestServer, type Auth, type TestServer } from '../helpers/server.js';
import { createPostgresConnection, createTenant, submitQuery, type Tenant } from '../helpers/tenants.js';
import { waitForQueryEnd, waitUntil } from '../helpers/wait.js';

let s: TestServer;
let a: Tenant;
let b: Tenant;
let aConnection: string;
let bConnection: string;
let observer: pg.Client;

beforeAll(async () => {
  s = await startTestServer({ QRUN_SESSION_IDLE_SECONDS: '60' });
  a = await createTenant(s, 'warm-a');
  b = await createTenant(s, 'warm-b');
  aConnection = await createPostgresConnection(s, a.admin, 'a-pg');
  bConnection = await createPostgresConnection(s, b.admin, 'b-pg');
  observer = new pg.Client({ host: '127.0.0.1', port: 5432, database: 'test', user: 'postgres' });
  await observer.connect();
});

afterAll(async () => {
  await observer?.end();
  await s?.close();
});

type Row = Record<string, unknown>;

/** Runs `sql` to its end and returns its first page of rows (the query must succeed). */
async function run(auth: Auth, connection: string, sql: string): Promise<Row[]> {
  const data = await attempt(auth, connection, sql);
  expect(data.status, JSON.stringify(data)).toBe('done');
  return (data.results ?? []) as Row[];
}

/** Runs `sql` to its end, done or failed. */
async function attempt(
  auth: Auth,
  connection: string,
  sql: string,
): Promise<{ status: string; results?: Row[]; error?: string }> {
  const id = await submitQuery(s, auth, connection, sql);
  return (await waitForQueryEnd(s, auth, id)).body.data;
}

/** The backend serving one query on `connection`: its pid, and what the session looks like to it. */
async function probe(auth: Auth, connection: string): Promise<Row> {
  const [row] = await run(
    auth,
    connection,
    `SELECT pg_backend_pid() AS pid,
            current_setting('qrun.planted', true) AS planted,
            current_setting('TimeZone') AS tz,
            current_user AS role,
            (SELECT count(*) FROM pg_prepared_statements)::int AS prepared,
            (SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND relname = 'planted_temp')::int AS temp_tables,
            (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())::int AS advisory_locks`,
  );
  return row!;
}

/** Whether backend `pid` is still connected (a warm session is an idle backend). */
async function alive(pid: unknown): Promise<boolean> {
  const r = await observer.query('SELECT state FROM pg_stat_activity WHERE pid = $1', [pid]);
  return r.rowCount === 1;
}

/**
 * Plants state in the session serving a query on A's connection, then probes until a query lands on that
 * same backend (proof that sessions are reused: the reset runs just after a query ends, so the very next
 * one may still open its own).
 */
async function plantThenProbe(plant: string): Promise<{ planted: unknown; reused: Row }> {
  const [row] = await run(a.admin, aConnection, plant);
  const planted = row!.pid;
  const reused = await waitUntil('a query on the planted session', async () => {
    const probed = await probe(a.admin, aConnection);
    return probed.pid === planted ? probed : undefined;
  });
  return { planted, reused };
}

describe('a reused PostgreSQL session is reset before the next query', () => {
  it('settings, time zone and role of an earlier query are gone; qrun’s own settings are back', async () => {
    // One statement that changes three session settings (set_config(..., false) lasts for the session).
    const { reused } = await plantThenProbe(
      `SELECT pg_backend_pid() AS pid, set_config('qrun.planted', 'secret of the first query', false) AS a,
              set_config('TimeZone', 'Asia/Tokyo', false) AS b, set_config('role', 'pg_monitor', false) AS c`,
    );
    expect(reused.planted ?? '').toBe('');
    expect(reused.tz).toBe('UTC');
    expect(reused.role).toBe('postgres');
  });

  it('temporary tables, prepared statements and advisory locks of an earlier query are gone', async () => {
    await run(a.admin, aConnection, 'CREATE TEMP TABLE IF NOT EXISTS planted_temp AS SELECT 42 AS secret');
    await run(a.admin, aConnection, 'SELECT pg_advisory_lock(4242)');
    const { reused } = await plantThenProbe(
      `SELECT pg_backend_pid() AS pid, pg_advisory_lock(4243) AS locked,
              (SELECT count(*) FROM pg_class WHERE relname = 'planted_temp') AS n`,
    );
    expect(reused.temp_tables).toBe(0);
    expect(reused.prepared).toBe(0);
    expect(reused.advisory_locks).toBe(0);
  });

  it('a session left inside a transaction is ended, never reused', async () => {
    const [row] = await run(a.admin, aConnection, 'SELECT pg_backend_pid() AS pid');
    const pid = row!.pid;
    // A statement that runs to its end leaving the session in a transaction: the reset fails, the session ends.
    await run(a.admin, aConnection, `BEGIN`);
    await waitUntil('no qrun session idle in a transaction', async () => {
      const r = await observer.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'qrun' AND state LIKE 'idle in transaction%'",
      );
      return r.rows[0].n === 0;
    });
    // Whatever backend the next query gets, it is not inside the earlier transaction.
    const [after] = await run(
      a.admin,
      aConnection,
      'SELECT pg_backend_pid() AS pid, now() = statement_timestamp() AS fresh_transaction',
    );
    expect(after!.fresh_transaction).toBe(true);
    expect(typeof pid).toBe('number');
  });
});

describe('a warm session never crosses to another organization or outlives its connection', () => {
  it("organization B, with a connection to the same server and role, never gets A's session", async () => {
    const [row] = await run(
      a.admin,
      aConnection,
      `SELECT pg_backend_pid() AS pid, set_config('qrun.planted', 'secret of organization A', false) AS s`,
    );
    const aPid = row!.pid;
    // Wait until A's session is back in the pool (idle, reset), so it is there to be taken.
    await waitUntil("A's session idle in the pool", async () => {
      const r = await observer.query('SELECT state, query FROM pg_stat_activity WHERE pid = $1', [aPid]);
      return r.rows[0]?.state === 'idle' && !String(r.rows[0]?.query).includes('qrun.planted');
    });
    for (let i = 0; i < 5; i++) {
      const probed = await probe(b.admin, bConnection);
      expect(probed.pid).not.toBe(aPid);
      expect(probed.planted ?? '').toBe('');
    }
    expect(await alive(aPid)).toBe(true);
    // A's own next query does take it.
    const again = await waitUntil("A's next query on its warm session", async () => {
      const probed = await probe(a.admin, aConnection);
      return probed.pid === aPid ? probed : undefined;
    });
    expect(again.planted ?? '').toBe('');
  });

  it('deleting a connection ends its warm sessions', async () => {
    const doomed = await createPostgresConnection(s, a.admin, 'doomed');
    const [row] = await run(a.admin, doomed, 'SELECT pg_backend_pid() AS pid');
    const pid = row!.pid;
    await waitUntil('the session to be idle in the pool', async () => {
      const r = await observer.query('SELECT state FROM pg_stat_activity WHERE pid = $1', [pid]);
      return r.rows[0]?.state === 'idle';
    });
    const deleted = await s.request('DELETE', `/api/connections/${doomed}`, { auth: a.admin });
    expect(deleted.status, deleted.text).toBeLessThan(300);
    await waitUntil('the warm session to end', async () => !(await alive(pid)));
  });

  it('a cancelled query’s session is ended, not reused', async () => {
    const id = await submitQuery(s, a.admin, aConnection, 'SELECT pg_backend_pid() AS pid, pg_sleep(60)');
    const marker = 'pg_sleep(60)';
    const pid = await waitUntil('the sleeping statement on the server', async () => {
      const r = await observer.query(
        "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND strpos(query, $1) > 0 AND pid <> pg_backend_pid()",
        [marker],
      );
      return r.rows[0]?.pid as number | undefined;
    });
    const cancelled = await s.request('POST', `/api/queries/${id}/cancel`, { auth: a.admin });
    expect(cancelled.status, cancelled.text).toBe(200);
    await waitUntil('the cancelled session to end', async () => !(await alive(pid)));
    const probed = await probe(a.admin, aConnection);
    expect(probed.pid).not.toBe(pid);
  });
});

describe('SQLite: a worker process serves the next statement of its own connection only', () => {
  let aSqlite: string;
  let bSqlite: string;
  let bFile: string;

  /** A database file in the organization's directory, and a writable connection to it. */
  async function sqliteConnection(tenant: Tenant, name: string): Promise<{ id: string; file: string }> {
    const dir = path.join(s.fileRoot, tenant.organizationId);
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, name);
    const db = new Database(file);
    db.exec('CREATE TABLE IF NOT EXISTS secret (v TEXT); DELETE FROM secret');
    db.prepare('INSERT INTO secret VALUES (?)').run(`secret of ${name}`);
    db.close();
    const r = await s.request('POST', '/api/connections', {
      auth: tenant.admin,
      body: { name, type: 'sqlite', configuration: { path: name, read_only: false } },
    });
    expect(r.status, r.text).toBe(200);
    return { id: r.body.data.id, file };
  }

  /** Worker processes that ran a statement and wait for the next (not the spares). */
  const kept = () => new Set(busySqliteWorkers().map((c) => c.pid));

  beforeAll(async () => {
    aSqlite = (await sqliteConnection(a, 'a.sqlite')).id;
    const created = await sqliteConnection(b, 'b.sqlite');
    bSqlite = created.id;
    bFile = created.file;
  });

  it('statements in a row reuse one process, and each starts on a clean connection', async () => {
    // Processes of other test files that ran earlier in this test process are not this test's.
    const before = kept();
    await run(a.admin, aSqlite, 'CREATE TEMP TABLE planted AS SELECT 42 AS secret');
    const seen = new Set<number>();
    const note = () => kept().forEach((pid) => before.has(pid) || seen.add(pid));
    note();
    for (let i = 0; i < 5; i++) {
      const [row] = await run(
        a.admin,
        aSqlite,
        "SELECT count(*) AS n FROM temp.sqlite_master WHERE name = 'planted'",
      );
      expect(row!.n).toBe(0);
      note();
    }
    // One statement at a time: without reuse, each of the six would have used a process of its own.
    expect(seen.size).toBeLessThanOrEqual(2);
  });

  it('an ATTACH guard slot freed by one statement is guarded again for the next', async () => {
    // Both statements end cleanly, so the second runs in the first one's process.
    await run(a.admin, aSqlite, 'DETACH DATABASE qrun_guard_0');
    const stolen = await attempt(a.admin, aSqlite, `ATTACH DATABASE '${bFile}' AS stolen`);
    expect(stolen.status).toBe('failed');
    expect(stolen.error).toMatch(/too many attached databases/);
  });

  it("organization B's statements never run in A's process", async () => {
    await run(a.admin, aSqlite, 'SELECT 1');
    const aProcesses = kept();
    expect(aProcesses.size).toBeGreaterThan(0);
    await run(b.admin, bSqlite, 'SELECT v FROM secret');
    const after = kept();
    // A's processes still wait for A; B's statement ran in one of its own, which now waits for B.
    for (const pid of aProcesses) expect(after.has(pid)).toBe(true);
    expect([...after].some((pid) => !aProcesses.has(pid))).toBe(true);
  });
});
