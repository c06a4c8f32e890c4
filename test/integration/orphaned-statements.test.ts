/**
 * A statement whose qrun process died must not keep running on the database. The PostgreSQL
 * connector sets client_connection_check_interval, so the server checks its client while a statement
 * runs; without it, pg_sleep(600) would hold its backend for ten minutes after the client is gone.
 * SQLite statements run in a process of their own, whose watchdog thread kills it once its parent is
 * gone. The statement is started through the connector in a child process, which is then SIGKILLed
 * (no cancel, no Terminate message: only the kernel closing its sockets).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { childProcesses } from '../helpers/cpu.js';
import { waitUntil } from '../helpers/wait.js';

const SERVER = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' };
const CONFIG = {
  hostname: SERVER.host,
  port: SERVER.port,
  database: SERVER.database,
  username: SERVER.user,
  ssl: false,
};
const CONNECTOR = fileURLToPath(
  new URL('../../src/connectors/postgres/postgres-connector.ts', import.meta.url),
);
const EGRESS = fileURLToPath(new URL('../../src/net/egress-policy.ts', import.meta.url));
const PROJECT = fileURLToPath(new URL('../..', import.meta.url));

/** Streams QRUN_SQL through the connector and waits for its rows; the parent kills it long before. */
const CHILD = `
import { postgresConnector } from ${JSON.stringify(CONNECTOR)};
import { EgressPolicy } from ${JSON.stringify(EGRESS)};
const stream = await postgresConnector.stream(
  JSON.parse(process.env.QRUN_CONFIG),
  process.env.QRUN_SQL,
  [],
  { signal: new AbortController().signal, batchSize: 10 },
  { fileDir: '/nonexistent', egress: new EgressPolicy() },
);
for await (const batch of stream.rows) console.log(JSON.stringify(batch));
`;

async function query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client(SERVER);
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Backends (other than ours) whose current query contains `marker`. */
async function backends(marker: string): Promise<{ pid: number; state: string }[]> {
  return query<{ pid: number; state: string }>(
    'SELECT pid, state FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND strpos(query, $1) > 0',
    [marker],
  );
}

describe('postgresql: statements of a crashed qrun', () => {
  let child: ChildProcess | undefined;
  let marker = '';

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    child = undefined;
    // Whatever the outcome, leave no sleeping backend behind.
    if (marker) {
      await query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND strpos(query, $1) > 0',
        [marker],
      );
    }
  });

  it('end on the server soon after the client process is killed', async () => {
    marker = `qrun_orphan_${randomBytes(6).toString('hex')}`;
    let output = '';
    child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], {
      cwd: PROJECT,
      env: {
        ...process.env,
        QRUN_CONFIG: JSON.stringify(CONFIG),
        QRUN_SQL: `/* ${marker} */ SELECT pg_sleep(600)`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<void>((resolve) => child?.once('exit', () => resolve()));

    const pid = await waitUntil(
      'the statement in pg_stat_activity',
      async () => {
        if (child?.exitCode !== null) throw new Error(`the child process ended early:\n${output}`);
        return (await backends(marker)).find((b) => b.state === 'active')?.pid;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );

    child.kill('SIGKILL');
    await exited;
    // The check runs every 5 s; pg_sleep(600) would otherwise keep the backend for ten minutes, far
    // beyond this test's time.
    await waitUntil(
      'the orphaned backend to end',
      async () => (await query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length === 0,
      { timeoutMs: 45_000, intervalMs: 100 },
    );
  });
});

const SQLITE_CONNECTOR = fileURLToPath(
  new URL('../../src/connectors/sqlite/sqlite-connector.ts', import.meta.url),
);

/** Streams QRUN_SQL from the SQLite file QRUN_DB under QRUN_ROOT. */
const SQLITE_CHILD = `
import { sqliteConnector } from ${JSON.stringify(SQLITE_CONNECTOR)};
import { EgressPolicy } from ${JSON.stringify(EGRESS)};
const stream = await sqliteConnector.stream(
  { path: process.env.QRUN_DB },
  process.env.QRUN_SQL,
  [],
  { signal: new AbortController().signal, batchSize: 10 },
  { fileDir: process.env.QRUN_ROOT, egress: new EgressPolicy() },
);
for await (const batch of stream.rows) console.log(JSON.stringify(batch));
`;

/** Alive: exists and is not a zombie waiting for its new parent to reap it. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('sqlite: statements of a crashed qrun', () => {
  let child: ChildProcess | undefined;
  let statementPid: number | undefined;
  let root: string | undefined;

  afterEach(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (statementPid !== undefined && alive(statementPid)) process.kill(statementPid, 'SIGKILL');
    if (root) rmSync(root, { recursive: true, force: true });
    child = statementPid = root = undefined;
  });

  it('end soon after the qrun process is killed, even inside one long step', async () => {
    root = mkdtempSync(path.join(tmpdir(), 'qrun-orphan-sqlite-'));
    new Database(path.join(root, 'orphan.db')).exec('CREATE TABLE t (x)').close();
    let output = '';
    child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SQLITE_CHILD], {
      cwd: PROJECT,
      env: {
        ...process.env,
        QRUN_ROOT: root,
        QRUN_DB: 'orphan.db',
        // One sqlite3_step() that counts for minutes before the first (and only) row.
        QRUN_SQL:
          'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000000000) SELECT count(*) FROM c',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<void>((resolve) => child?.once('exit', () => resolve()));
    const parent = child.pid!;

    // The statement's process, well inside its one long step: the SQLite worker that has computed for a
    // second. (Spare workers wait beside it, idle: start-up costs far less; tsx's esbuild service is no worker.)
    const statement = await waitUntil(
      'the SQLite statement process to spend a second of CPU',
      () => {
        if (child?.exitCode !== null) throw new Error(`the child process ended early:\n${output}`);
        return childProcesses(parent).find((p) => p.command.includes('sqlite-worker') && p.cpuMs >= 1000);
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    statementPid = statement.pid;
    const spares = childProcesses(parent)
      .filter((p) => p.command.includes('sqlite-worker') && p.pid !== statement.pid)
      .map((p) => p.pid);
    expect(alive(statementPid)).toBe(true);

    child.kill('SIGKILL');
    await exited;
    const gone = statementPid;
    // The count takes about half an hour: only the watchdog ends it within this test's time.
    await waitUntil('the orphaned statement process to end', () => !alive(gone), { timeoutMs: 30_000 });
    // The spare workers that were waiting for a statement end with it.
    await waitUntil('the orphaned spare processes to end', () => !spares.some(alive), { timeoutMs: 30_000 });
  });
});
