/**
 * A `qrun start` process killed with SIGKILL in the middle of a query, then started again on the same
 * installation: the query that was running ends `failed` (error_details code `lost`, retryable) and its
 * partial pages are gone, and the query that was still queued runs after the restart. Real child
 * processes (the compiled dist/).
 *
 * On both deployments. Embedded (SQLite), the restarted process owns the store alone and marks the
 * running task lost before it listens. Scaled out (PostgreSQL, Redis, S3), other workers might still be
 * alive, so only the lease running out proves the task lost: a short lease and sweep interval keep that
 * to a few seconds, and the queued task waits in Redis for the new process.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResultStore } from '../../src/results/result-store.js';
import {
  anyPageExists,
  deploymentEnv,
  onScaleOut,
  openResultStore,
  storedPages,
  type DeploymentEnv,
} from '../helpers/deployment.js';
import { freePort, runQrun, waitForHttp, type QrunProcess } from '../helpers/process.js';
import { waitUntil } from '../helpers/wait.js';

const PG = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };
const dataDir = mkdtempSync(path.join(tmpdir(), 'qrun-crash-'));
const marker = `qrun_crash_${randomBytes(4).toString('hex')}`;
let env: Record<string, string> = {};
let deployment: DeploymentEnv | undefined;
/** The installation's result store, opened by the test itself to see the pages the process wrote. */
let results: ResultStore | undefined;

let proc: QrunProcess | undefined;

beforeAll(async () => {
  deployment = await deploymentEnv(dataDir);
  env = {
    ...deployment.env,
    QRUN_DATA_DIR: dataDir,
    QRUN_WORKER_CONCURRENCY: '1',
    QRUN_PAGE_ROWS: '100',
    QRUN_LOG_LEVEL: 'warn',
    // The lost task's lease runs out 6 s after the kill; the heartbeat renews it every 2 s until then.
    ...(onScaleOut ? { QRUN_LEASE_SECONDS: '6', QRUN_SWEEP_INTERVAL_SECONDS: '1' } : {}),
  };
  results = openResultStore(env);
});

/** Runs `sql` on a short-lived connection of its own. */
async function withPg<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(PG);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Backends running the slow query (found by the marker in its text). */
const MARKED = 'FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND strpos(query, $1) > 0';

afterAll(async () => {
  if (proc && proc.child.exitCode === null && proc.child.signalCode === null) {
    proc.child.kill('SIGTERM');
    await proc.exited;
  }
  // The killed process's pg_sleep would go on for ten minutes: a sleeping backend does not notice
  // that its client is gone.
  await withPg((c) => c.query(`SELECT pg_terminate_backend(pid) ${MARKED}`, [marker]));
  await results?.close();
  await deployment?.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

async function start(): Promise<{ proc: QrunProcess; base: string }> {
  const port = await freePort();
  const started = runQrun(['start'], { ...env, QRUN_PORT: String(port) });
  const base = `http://127.0.0.1:${port}`;
  await waitForHttp(`${base}/readyz`, started);
  return { proc: started, base };
}

describe('crash and restart', () => {
  it('a query running at the crash ends failed (lost) with its pages deleted; a queued one runs again', async () => {
    let base: string;
    ({ proc, base } = await start());
    const key = readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim();
    const call = async (method: string, p: string, body?: unknown) => {
      const res = await fetch(base + p, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, text, body: JSON.parse(text) as any };
    };
    const status = async (id: string) => (await call('GET', `/api/queries/${id}`)).body.data.status as string;

    const connection = await call('POST', '/api/connections', {
      name: 'crash',
      type: 'postgresql',
      configuration: { hostname: PG.host, port: PG.port, database: PG.database, username: PG.user },
    });
    expect(connection.status, connection.text).toBe(200);
    const submit = async (query: string) => {
      const r = await call('POST', `/api/connections/${connection.body.data.id}/query`, { query });
      expect(r.status, r.text).toBe(200);
      return r.body.data.id as string;
    };

    // Batches of 100 rows (the page size): rows 1..4900 arrive and are paged before row 5000 sleeps.
    const slow = await submit(
      `/* ${marker} */ SELECT n, CASE WHEN n = 5000 THEN pg_sleep(600) END AS slept FROM generate_series(1, 10000) AS n`,
    );
    await waitUntil('the slow query to run', async () => {
      const s = await status(slow);
      if (s !== 'created' && s !== 'running') throw new Error(`the slow query ended ${s} before the crash`);
      return s === 'running';
    });
    // One worker, busy with the slow query: this one waits in the queue.
    const queued = await submit('SELECT n FROM generate_series(1, 250) AS n');
    await waitUntil(
      'a page of the slow query in the store',
      async () => (await storedPages(results!, slow)) > 0,
    );
    await waitUntil('the slow query to sleep on the server', async () => {
      const r = await withPg((c) => c.query(`SELECT 1 ${MARKED} AND state = 'active'`, [marker]));
      return r.rowCount === 1;
    });
    expect(await status(slow)).toBe('running');
    expect(await status(queued)).toBe('created');

    proc.child.kill('SIGKILL');
    expect((await proc.exited).signal).toBe('SIGKILL');
    expect(await storedPages(results!, slow)).toBeGreaterThan(0);
    // Rows 1..4999 come before the sleep: at most 50 pages, some perhaps still in flight out of order.
    const pages = 50;

    ({ proc, base } = await start());
    // Embedded, the first read already says failed; scaled out, a long-poll ends when the lease runs out.
    const lost = await call('GET', `/api/queries/${slow}${onScaleOut ? '?wait=30' : ''}`);
    expect(lost.body.data, lost.text).toMatchObject({ id: slow, status: 'failed' });
    expect(lost.body.data.error).toMatch(/lost/);
    expect(lost.body.data.error_details).toEqual({
      code: 'lost',
      sqlstate: null,
      retryable: true,
      position: null,
    });
    expect(lost.body.data.results).toBeUndefined();
    if (onScaleOut) {
      // The sweeper deletes the pages right after recording the verdict, so a reader may be a moment early.
      await waitUntil('the lost pages to go', async () => !(await anyPageExists(results!, slow, pages)));
    } else {
      // Recovery runs before the server listens, so the pages are already gone.
      expect(await anyPageExists(results!, slow, pages)).toBe(false);
    }

    let page = await call('GET', `/api/queries/${queued}?wait=30`);
    expect(page.body.data, page.text).toMatchObject({ status: 'done', fields: ['n'] });
    expect(page.body.data.count).toBe(250);
    const rows: unknown[] = [];
    for (;;) {
      rows.push(...page.body.data.results);
      if (!page.body.links.next) break;
      page = await call('GET', page.body.links.next);
    }
    expect(rows).toEqual(Array.from({ length: 250 }, (_, i) => ({ n: i + 1 })));
  });
});
