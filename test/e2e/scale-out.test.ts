import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runQrun, waitForHttp, type QrunProcess } from '../helpers/process.js';
import { startS3rver, type S3rver } from '../helpers/s3rver.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { request } from '../helpers/server.js';
import { waitForQueryEnd, waitUntil, type QueryApi } from '../helpers/wait.js';

/**
 * The scale-out deployment as real processes: 2 `qrun api` and 2 `qrun worker` on PostgreSQL metadata,
 * Redis dispatch and s3rver pages. 200 queries of mixed sizes on PostgreSQL and MariaDB go in through
 * both api processes and are read back through the other one, row for row against a direct driver read,
 * while one worker is killed with SIGKILL half-way.
 *
 * It sets up this deployment itself whatever QRUN_TEST_DEPLOYMENT says, so `npm run test:scale-out`
 * leaves it out (it would only repeat this file); `vitest run` (the first pass of `npm test`) runs it.
 *
 * The processes, the data and the two stored connections are shared (beforeAll); each test starts the
 * workers it needs itself, so any one of them passes alone (`vitest run -t '<its name>'`) or in any order.
 */

const TAG = `qrun_e2e_${randomBytes(4).toString('hex')}`;
const META_DB = `${TAG}_meta`;
const DATA_DB = `${TAG}_data`;
const PREFIX = TAG;
const ROWS = 100_000;
const SIZES = [10, 100, 1000, 5000, 20_000];
const QUERIES = 200;

interface Row {
  id: number;
  h: string;
  v: string;
}

const dirs: string[] = [];
const procs: QrunProcess[] = [];
let s3: S3rver;
const apis: string[] = [];
let adminKey = '';
/** Every worker started so far, dead ones included. */
const workers: QrunProcess[] = [];
let common: Record<string, string> = {};
const connections: Record<'postgresql' | 'mysql', string> = { postgresql: '', mysql: '' };

function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'qrun-scale-'));
  dirs.push(d);
  return d;
}

async function pgAdmin<T>(fn: (c: pg.Client) => Promise<T>, database = 'postgres'): Promise<T> {
  const c = new pg.Client({ host: '127.0.0.1', user: 'postgres', database });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function sqlFor(engine: 'postgresql' | 'mysql', size: number): string {
  return engine === 'postgresql'
    ? `select id, h, v from t where id <= ${size} order by id`
    : `select id, h, v from t where id <= ${size} order by id`;
}

/** What the contract says the driver's values become on the wire. */
async function directRead(engine: 'postgresql' | 'mysql', size: number): Promise<Row[]> {
  if (engine === 'postgresql') {
    return pgAdmin(async (c) => {
      const r = await c.query<{ id: number; h: string; v: string }>(sqlFor(engine, size));
      return r.rows.map((x) => ({ id: x.id, h: x.h, v: x.v }));
    }, DATA_DB);
  }
  const c = await mysql.createConnection({
    host: '127.0.0.1',
    user: 'root',
    database: DATA_DB,
    decimalNumbers: false,
  });
  try {
    const [rows] = await c.query(sqlFor(engine, size));
    return (rows as { id: number; h: string; v: string }[]).map((x) => ({
      id: x.id,
      h: x.h,
      v: String(x.v),
    }));
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  await pgAdmin((c) => c.query(`create database ${META_DB}`));
  await pgAdmin((c) => c.query(`create database ${DATA_DB}`));
  await pgAdmin(
    (c) =>
      c.query(
        `create table t as select n::int as id, md5(n::text) as h, (n * 1.5)::numeric(20,6) as v from generate_series(1, ${ROWS}) n`,
      ),
    DATA_DB,
  );
  // seq_1_to_N (MariaDB's sequence engine) needs a current database.
  const my = await mysql.createConnection({ host: '127.0.0.1', user: 'root', database: 'test' });
  await my.query(`create database ${DATA_DB}`);
  await my.query(
    `create table ${DATA_DB}.t as select cast(seq as signed) as id, md5(seq) as h, cast(seq * 1.5 as decimal(20,6)) as v from seq_1_to_${ROWS}`,
  );
  await my.end();
  s3 = await startS3rver();

  common = {
    QRUN_DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${META_DB}`,
    QRUN_REDIS_URL: 'redis://127.0.0.1:6379',
    QRUN_REDIS_PREFIX: PREFIX,
    QRUN_SECRET_KEY: randomBytes(32).toString('base64'),
    QRUN_PARTNER_KEY: `qrun_p_${randomBytes(32).toString('base64url')}`,
    QRUN_PAGE_ROWS: '1000',
    QRUN_LEASE_SECONDS: '6',
    QRUN_SWEEP_INTERVAL_SECONDS: '1',
    QRUN_WORKER_CONCURRENCY: '4',
    QRUN_CONNECTION_CONCURRENCY: '2',
    QRUN_MAX_QUEUED: '1000',
    // One organization submits 200 queries at once here.
    QRUN_ORG_MAX_QUEUED: '1000',
    // ...and reads every page of them: thousands of requests with the admin key, far over the default 600 a minute.
    QRUN_RATE_LIMIT_PER_MINUTE: '100000',
    QRUN_LOG_LEVEL: 'warn',
    // The AWS SDK announces its future Node 22 requirement once per process; not this test's concern.
    NODE_NO_WARNINGS: '1',
    ...s3.env(PREFIX),
  };

  // The first api bootstraps the shared store; the second finds it ready.
  for (let i = 0; i < 2; i++) {
    const dataDir = tempDir();
    const port = await freePort();
    const p = runQrun(['api'], { ...common, QRUN_DATA_DIR: dataDir, QRUN_PORT: String(port) });
    procs.push(p);
    apis.push(`http://127.0.0.1:${port}`);
    await waitForHttp(`${apis[i]}/readyz`, p);
    if (i === 0) adminKey = readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim();
  }
  for (const [engine, configuration] of [
    ['postgresql', { hostname: '127.0.0.1', port: 5432, database: DATA_DB, username: 'postgres' }],
    ['mysql', { hostname: '127.0.0.1', port: 3306, dbname: DATA_DB, account: 'root' }],
  ] as const) {
    const c = await request(apis[0]!, 'POST', '/api/connections', {
      auth: { bearer: adminKey },
      body: { name: engine, type: engine, configuration },
    });
    expect(c.status, c.text).toBe(200);
    connections[engine] = c.body.data.id;
  }
}, 180_000);

async function startWorker(): Promise<QrunProcess> {
  const port = await freePort();
  const p = runQrun(['worker'], { ...common, QRUN_DATA_DIR: tempDir(), QRUN_WORKER_PORT: String(port) });
  procs.push(p);
  workers.push(p);
  await waitForHttp(`http://127.0.0.1:${port}/readyz`, p);
  return p;
}

const running = (p: QrunProcess) => p.child.exitCode === null && p.child.signalCode === null;

/** Starts workers until `n` are alive (whatever earlier tests did to theirs); returns the live ones. */
async function ensureWorkers(n: number): Promise<QrunProcess[]> {
  while (workers.filter(running).length < n) await startWorker();
  return workers.filter(running);
}

/** One api process as a QueryApi (for waitForQueryEnd). */
const via = (api: string): QueryApi => ({
  request: (method, p, options) => request(api, method, p, options),
});

async function submitVia(api: string, engine: 'postgresql' | 'mysql', query: string) {
  const r = await request(api, 'POST', `/api/connections/${connections[engine]}/query`, {
    auth: { bearer: adminKey },
    body: { query },
  });
  expect(r.status, r.text).toBe(200);
  return r.body.data.id as string;
}

function waitTerminal(api: string, id: string) {
  return waitForQueryEnd(via(api), { bearer: adminKey }, id);
}

async function activeBackends(marker: string, client?: pg.Client): Promise<number> {
  const count = async (c: pg.Client) => {
    const r = await c.query(
      `select count(*)::int as n from pg_stat_activity where state = 'active' and query like $1 and pid <> pg_backend_pid()`,
      [`%${marker}%`],
    );
    return r.rows[0].n as number;
  };
  return client ? count(client) : pgAdmin(count);
}

afterAll(async () => {
  for (const p of procs)
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  await Promise.all(procs.map((p) => p.exited));
  await s3?.close();
  await pgAdmin((c) => c.query(`drop database if exists ${META_DB} with (force)`));
  await pgAdmin((c) => c.query(`drop database if exists ${DATA_DB} with (force)`));
  const my = await mysql.createConnection({ host: '127.0.0.1', user: 'root' });
  await my.query(`drop database if exists ${DATA_DB}`);
  await my.end();
  const redis = new Redis('redis://127.0.0.1:6379');
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
  await redis.quit();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 120_000);

describe('scale-out: 2 api + 2 worker processes on PostgreSQL, Redis and S3', () => {
  it('runs 200 queries across both apis, survives a worker killed mid-way, and serves only complete results', async () => {
    const auth = { bearer: adminKey };
    // Two workers, one of which dies half-way.
    const [victim] = await ensureWorkers(2);

    const started = Date.now();
    const submitted: { id: string; engine: 'postgresql' | 'mysql'; size: number; via: number }[] = [];
    for (let i = 0; i < QUERIES; i++) {
      const engine = i % 2 === 0 ? 'postgresql' : 'mysql';
      // Mostly small and medium results, and a few of the full 100,000 rows.
      const size = i % 40 === 0 || i % 40 === 1 ? ROWS : SIZES[i % SIZES.length]!;
      const via = i % 2;
      const r = await request(apis[via]!, 'POST', `/api/connections/${connections[engine]}/query`, {
        auth,
        body: { query: sqlFor(engine, size) },
      });
      expect(r.status, r.text).toBe(200);
      submitted.push({ id: r.body.data.id, engine, size, via });
      // Half-way, kill a worker while it is busy.
      if (i === QUERIES / 2) victim!.child.kill('SIGKILL');
    }

    // Every task reaches a terminal status, read through the api that did not take it.
    const final = new Map<string, any>();
    for (const q of submitted) {
      const other = apis[1 - q.via]!;
      // Generous: the killed worker's tasks wait for their leases to run out.
      const r = await waitForQueryEnd(via(other), auth, q.id, { timeoutMs: 300_000 });
      expect(['done', 'failed'], `${q.id}: ${JSON.stringify(r.body.data)}`).toContain(r.body.data.status);
      final.set(q.id, r.body);
    }
    const elapsed = (Date.now() - started) / 1000;

    // Done results are complete and exact; lost ones serve nothing.
    const expected = new Map<string, Row[]>();
    let rows = 0;
    let done = 0;
    for (const q of submitted) {
      const first = final.get(q.id);
      if (first.data.status === 'failed') {
        expect(first.data.error).toMatch(/lost/);
        expect(first.data.error_details).toMatchObject({ code: 'lost', retryable: true });
        expect(first.data.results).toBeUndefined();
        continue;
      }
      done++;
      const key = `${q.engine}:${q.size}`;
      if (!expected.has(key)) expected.set(key, await directRead(q.engine, q.size));
      const want = expected.get(key)!;
      expect(first.data.count).toBe(want.length);
      const got: Row[] = [...first.data.results];
      let next: string | null = first.links.next;
      while (next) {
        const page = await request(apis[1 - q.via]!, 'GET', next, { auth });
        expect(page.status).toBe(200);
        got.push(...page.body.data.results);
        next = page.body.links.next;
      }
      expect(got.length).toBe(want.length);
      for (let i = 0; i < want.length; i++) {
        if (got[i]!.id !== want[i]!.id || got[i]!.h !== want[i]!.h || got[i]!.v !== want[i]!.v) {
          expect(got[i], `${key} row ${i}`).toEqual(want[i]);
        }
      }
      rows += want.length;
    }

    const lost = submitted.length - done;
    console.log(
      `scale-out: ${submitted.length} queries (${done} done, ${lost} lost with the killed worker) in ${elapsed.toFixed(1)} s: ` +
        `${(submitted.length / elapsed).toFixed(1)} queries/s, ${Math.round(rows / elapsed)} rows/s ` +
        '(submit to every task terminal, including the lease expiry of the killed worker)',
    );
    // The surviving worker carried on: most queries ran to the end.
    expect(done).toBeGreaterThan(QUERIES / 2);
  }, 600_000);

  it('a cancel sent to either api reaches the worker and stops the statement; long-polls end on any api', async () => {
    await ensureWorkers(1);
    const marker = `cancel_${TAG}`;
    const id = await submitVia(apis[0]!, 'postgresql', `select pg_sleep(60) /* ${marker} */`);
    await waitUntil('the statement to run on the server', async () => (await activeBackends(marker)) > 0);
    expect(await activeBackends(marker)).toBe(1);
    // A long-poll waits on api 0 while the cancel goes through api 1.
    const waiting = request(apis[0]!, 'GET', `/api/queries/${id}?wait=60`, { auth: { bearer: adminKey } });
    const canceled = await request(apis[1]!, 'POST', `/api/queries/${id}/cancel`, {
      auth: { bearer: adminKey },
    });
    expect(canceled.body.data).toMatchObject({ status: 'failed', error: 'canceled' });
    const polled = await waiting;
    expect(polled.body.data).toEqual({
      id,
      status: 'failed',
      error: 'canceled',
      error_details: { code: 'canceled', sqlstate: null, retryable: false, position: null },
    });
    await waitUntil('the statement to leave the server', async () => (await activeBackends(marker)) === 0);
  });

  it('the per-connection limit holds across three workers together', async () => {
    await ensureWorkers(3);
    const marker = `limit_${TAG}`;
    const ids: string[] = [];
    for (let i = 0; i < 20; i++)
      ids.push(await submitVia(apis[i % 2]!, 'postgresql', `select pg_sleep(0.3) /* ${marker} */`));
    let max = 0;
    let finished = false;
    // Samples back to back on one connection (each sample a round trip) until every query has ended.
    const sampler = pgAdmin(async (c) => {
      while (!finished) max = Math.max(max, await activeBackends(marker, c));
    });
    for (const id of ids) expect((await waitTerminal(apis[0]!, id)).body.data.status).toBe('done');
    finished = true;
    await sampler;
    expect(max).toBe(2);
  });

  it('tasks survive Redis losing its data: the sweeper enqueues them again', async () => {
    // Stop every worker so the new tasks stay queued, then drop qrun's keys as a Redis restart would.
    for (const w of workers) if (running(w)) w.child.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.exited));
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await submitVia(apis[i % 2]!, 'mysql', `select ${i} as i`));
    const redis = new Redis('redis://127.0.0.1:6379');
    let cursor = '0';
    let dropped = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) dropped += await redis.del(...keys);
    } while (cursor !== '0');
    await redis.quit();
    expect(dropped).toBeGreaterThan(0);
    await ensureWorkers(1);
    for (const [i, id] of ids.entries()) {
      const r = await waitTerminal(apis[1]!, id);
      expect(r.body.data.status).toBe('done');
      expect(r.body.data.results).toEqual([{ i }]);
    }
  });

  it('while Redis is unreachable an api serves finished results and answers submits with 503', async () => {
    await ensureWorkers(1);
    const finished = await submitVia(apis[0]!, 'postgresql', 'select 42 as answer');
    expect((await waitTerminal(apis[0]!, finished)).body.data.status).toBe('done');

    const proxy = await startTcpProxy({ host: '127.0.0.1', port: 6379 });
    const port = await freePort();
    const api = runQrun(['api'], {
      ...common,
      QRUN_REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      QRUN_DATA_DIR: tempDir(),
      QRUN_PORT: String(port),
    });
    procs.push(api);
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/readyz`, api);
    await proxy.cut();

    const read = await request(url, 'GET', `/api/queries/${finished}`, { auth: { bearer: adminKey } });
    expect(read.status).toBe(200);
    expect(read.body.data.results).toEqual([{ answer: 42 }]);
    const before = (await request(apis[0]!, 'GET', '/api/queries?limit=200', { auth: { bearer: adminKey } }))
      .body.data.length;
    const submit = await request(url, 'POST', `/api/connections/${connections.postgresql}/query`, {
      auth: { bearer: adminKey },
      body: { query: 'select 1' },
    });
    expect(submit.status).toBe(503);
    expect(submit.body.key).toBe('unavailable');
    expect(submit.headers.get('retry-after')).toMatch(/^\d+$/);
    const after = (await request(apis[0]!, 'GET', '/api/queries?limit=200', { auth: { bearer: adminKey } }))
      .body.data.length;
    expect(after).toBe(before);
  });
});
