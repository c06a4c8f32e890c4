/**
 * Size limits (issue 10, item 3), through real HTTP on the deployment under test: a result larger than
 * QRUN_MAX_RESULT_BYTES, a row larger than QRUN_PAGE_BYTES, QRUN_MIN_FREE_BYTES on a file result store,
 * and the DuckDB instance limits.
 *
 * The free-space checks need a volume whose free space the test controls: a tmpfs of a few MiB, mounted
 * here when this process may (root, as in CI), so the threshold and ENOSPC are exact. Without one, the
 * threshold test sets QRUN_MIN_FREE_BYTES just below the current free space instead, and the ENOSPC test
 * is skipped.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onScaleOut } from '../helpers/deployment.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitForQueryEnd, waitUntil } from '../helpers/wait.js';

const MiB = 1024 * 1024;
const pgConfig = { hostname: '127.0.0.1', port: 5432, database: 'test', username: 'postgres' };

async function createConnection(
  s: TestServer,
  type: string,
  configuration: Record<string, unknown>,
): Promise<string> {
  const r = await s.request('POST', '/api/connections', {
    auth: { bearer: s.adminKey },
    body: { name: `${type}-${randomBytes(3).toString('hex')}`, type, configuration },
  });
  expect(r.status, r.text).toBe(200);
  return r.body.data.id;
}

async function submit(s: TestServer, connectionId: string, query: string) {
  return s.request('POST', `/api/connections/${connectionId}/query`, {
    auth: { bearer: s.adminKey },
    body: { query },
  });
}

async function finished(s: TestServer, id: string) {
  return (await waitForQueryEnd(s, { bearer: s.adminKey }, id)).body.data;
}

async function run(s: TestServer, connectionId: string, query: string) {
  const r = await submit(s, connectionId, query);
  expect(r.status, r.text).toBe(200);
  return finished(s, r.body.data.id);
}

/** The size of every page the server's result store was asked to write, by query id. */
function recordPageSizes(s: TestServer): Map<string, number[]> {
  const sizes = new Map<string, number[]>();
  const store = s.qrun.results;
  const putPage = store.putPage.bind(store);
  store.putPage = (queryId, page, bytes) => {
    sizes.set(queryId, [...(sizes.get(queryId) ?? []), bytes.length]);
    return putPage(queryId, page, bytes);
  };
  return sizes;
}

async function sessionsRunning(tag: string): Promise<number> {
  const client = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' });
  await client.connect();
  try {
    const r = await client.query<{ n: string }>(
      'SELECT count(*)::text AS n FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND strpos(query, $1) > 0',
      [tag],
    );
    return Number(r.rows[0]!.n);
  } finally {
    await client.end();
  }
}

const freeBytes = (path: string) => {
  const { bavail, bsize } = statfsSync(path);
  return bavail * bsize;
};

interface Volume {
  dir: string;
  unmount(): void;
}

/** A tmpfs of `bytes` on a new directory, or undefined when this process may not mount one. */
function mountTmpfs(bytes: number): Volume | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'qrun-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', dir], {
      stdio: 'ignore',
    });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  return {
    dir,
    unmount() {
      try {
        execFileSync('umount', [dir], { stdio: 'ignore' });
      } catch {
        execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const canMountTmpfs = (() => {
  const probe = mountTmpfs(MiB);
  probe?.unmount();
  return probe !== undefined;
})();

describe('QRUN_MAX_RESULT_BYTES', () => {
  let s: TestServer;
  let pgId: string;
  let pageSizes: Map<string, number[]>;

  beforeAll(async () => {
    // Pages of 50 rows of about 1 KB: three fit in 200000 bytes, the fourth does not.
    s = await startTestServer({ QRUN_MAX_RESULT_BYTES: '200000', QRUN_PAGE_ROWS: '50' });
    pgId = await createConnection(s, 'postgresql', pgConfig);
    pageSizes = recordPageSizes(s);
  });
  afterAll(() => s?.close());

  it('fails a larger result with a message naming the limit, deletes its pages and ends its statement', async () => {
    const tag = `qrun_size_${randomBytes(6).toString('hex')}`;
    const r = await submit(s, pgId, `select repeat('x', 1000) from generate_series(1, 100000) /* ${tag} */`);
    expect(r.status).toBe(200);
    const id = r.body.data.id;
    const data = await finished(s, id);
    expect(data.status).toBe('failed');
    expect(data.error).toBe(
      'The result is larger than this server keeps (QRUN_MAX_RESULT_BYTES = 200000 bytes); add a LIMIT or ' +
        'filter, or use max_rows.',
    );
    expect(data.error_details).toEqual({
      code: 'result_too_large',
      sqlstate: null,
      retryable: false,
      position: null,
    });
    // Three pages were stored before the fourth would have crossed the limit; none is left.
    const sizes = pageSizes.get(id) ?? [];
    expect(sizes.length).toBe(3);
    expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(200_000);
    expect(await s.pagesExist(id)).toBe(false);
    // The cursor was closed, not left open on the database.
    await waitUntil('the statement to end', async () => (await sessionsRunning(tag)) === 0);
  });

  it('keeps a result within the limit', async () => {
    const data = await run(s, pgId, "select repeat('x', 1000) as pad from generate_series(1, 150)");
    expect(data.status).toBe('done');
    expect(data.count).toBe(150);
  });
});

describe('a row larger than QRUN_PAGE_BYTES', () => {
  let s: TestServer;
  let pgId: string;
  let pageSizes: Map<string, number[]>;

  beforeAll(async () => {
    s = await startTestServer();
    pgId = await createConnection(s, 'postgresql', pgConfig);
    pageSizes = recordPageSizes(s);
  });
  afterAll(() => s?.close());

  it('fails the query with the row’s number in the result and its size; no page ever exceeds the limit', async () => {
    // Two full pages of 1000 small rows come first, then the 2500th row is 5 MB of JSON.
    const r = await submit(
      s,
      pgId,
      "select case when n = 2500 then repeat('x', 5000000) else 'small' end as v from generate_series(1, 2500) n",
    );
    const id = r.body.data.id;
    const data = await finished(s, id);
    expect(data.status).toBe('failed');
    const rowBytes = Buffer.byteLength(JSON.stringify({ v: 'x'.repeat(5_000_000) }));
    expect(data.error).toBe(
      `Row 2500 is ${rowBytes} bytes of JSON, more than a result page may hold (QRUN_PAGE_BYTES = 4 MiB).`,
    );
    expect(data.error_details).toMatchObject({ code: 'row_too_large', retryable: false });
    const sizes = pageSizes.get(id) ?? [];
    expect(sizes.length).toBe(2);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(4 * MiB);
    expect(await s.pagesExist(id)).toBe(false);
  });

  it('keeps a row that fits in a page on its own', async () => {
    const data = await run(s, pgId, "select repeat('y', 4000000) as v union all select 'small'");
    expect(data.status).toBe('done');
    expect(data.count).toBe(2);
    expect(data.results[0].v.length).toBe(4_000_000);
  });
});

describe('QRUN_MIN_FREE_BYTES above the free space', () => {
  let s: TestServer;
  let pgId: string;

  beforeAll(async () => {
    // More than any volume here has free: test servers keep their data (and result files) under tmpdir().
    s = await startTestServer({ QRUN_MIN_FREE_BYTES: String(freeBytes(tmpdir()) + 2 ** 40) });
    pgId = await createConnection(s, 'postgresql', pgConfig);
  });
  afterAll(() => s?.close());

  // Scale-out keeps pages in S3, which has no volume to measure: the check applies to file stores only.
  it.skipIf(onScaleOut)('answers submits with 503 storage_full, and creates nothing', async () => {
    const r = await submit(s, pgId, 'select 1');
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ status: 503, key: 'storage_full' });
    expect(r.body.message).toMatch(/short of storage for query results/);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    const list = await s.request('GET', '/api/queries', { auth: { bearer: s.adminKey } });
    expect(list.status).toBe(200);
    expect(list.body.data).toEqual([]);
  });

  it.runIf(onScaleOut)('does not apply to S3: queries run', async () => {
    expect((await run(s, pgId, 'select 1 as one')).results).toEqual([{ one: 1 }]);
  });
});

// Scale-out keeps pages in S3, which has no volume to measure: these apply to file stores only.
describe.skipIf(onScaleOut)('running out of result storage', () => {
  /** About 50 MB of pages, in pages of about 1 MB. */
  const FIFTY_MB = "select repeat('x', 1000) as pad from generate_series(1, 50000)";

  it('fails a running query that would take the volume below the reserve; the metadata store on it keeps working', async () => {
    // The whole data directory (SQLite metadata and result files) on one 64 MiB volume, 32 MiB of it
    // reserved: the query stops after about 30 MB of pages, and the metadata store still has room.
    const volume = mountTmpfs(64 * MiB);
    const dataDir = volume?.dir ?? mkdtempSync(join(tmpdir(), 'qrun-test-'));
    let s: TestServer | undefined;
    try {
      const reserve = volume ? 32 * MiB : freeBytes(dataDir) - 16 * MiB;
      s = await startTestServer({ QRUN_MIN_FREE_BYTES: String(reserve) }, { dataDir });
      const pgId = await createConnection(s, 'postgresql', pgConfig);
      const pageSizes = recordPageSizes(s);
      const r = await submit(s, pgId, FIFTY_MB);
      expect(r.status, r.text).toBe(200);
      const id = r.body.data.id;
      const data = await finished(s, id);
      expect(data.status).toBe('failed');
      expect(data.error).toMatch(/^The server ran out of storage for query results while this query ran/);
      expect(data.error_details).toMatchObject({ code: 'storage_full', retryable: true });
      expect(pageSizes.get(id)?.length).toBeGreaterThan(0);
      expect(await s.pagesExist(id)).toBe(false);
      if (volume) expect(freeBytes(volume.dir)).toBeGreaterThan(reserve);
      // With the pages gone there is room again, and the store that recorded all this still works.
      expect((await run(s, pgId, 'select 1 as one')).results).toEqual([{ one: 1 }]);
    } finally {
      await s?.close();
      if (volume) volume.unmount();
      else rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it.skipIf(!canMountTmpfs)(
    'fails a query whose page write finds the disk full (ENOSPC) the same way',
    async () => {
      // Result files alone on a 16 MiB volume with no reserve: a page write fails with ENOSPC.
      const volume = mountTmpfs(16 * MiB)!;
      let s: TestServer | undefined;
      try {
        s = await startTestServer({ QRUN_RESULTS_URL: `file:${volume.dir}`, QRUN_MIN_FREE_BYTES: '0' });
        const pgId = await createConnection(s, 'postgresql', pgConfig);
        const r = await submit(s, pgId, FIFTY_MB);
        const id = r.body.data.id;
        const data = await finished(s, id);
        expect(data.status).toBe('failed');
        expect(data.error).toMatch(/^The server ran out of storage for query results while this query ran/);
        expect(data.error_details).toMatchObject({ code: 'storage_full', retryable: true });
        expect(await s.pagesExist(id)).toBe(false);
        // Nothing left behind on the volume, temp files included.
        expect(freeBytes(volume.dir)).toBeGreaterThan(15 * MiB);
      } finally {
        await s?.close();
        volume.unmount();
      }
    },
  );
});

describe('DuckDB instance limits', () => {
  let s: TestServer;
  let duckId: string;

  beforeAll(async () => {
    s = await startTestServer({
      QRUN_DUCKDB_THREADS: '3',
      QRUN_DUCKDB_MEMORY_BYTES: String(256 * MiB),
      QRUN_DUCKDB_MAX_TEMP_BYTES: String(1024 * MiB),
    });
    duckId = await createConnection(s, 'duckdb', { path: ':memory:' });
  });
  afterAll(() => s?.close());

  it('applies the configured threads, memory_limit and max_temp_directory_size', async () => {
    const data = await run(
      s,
      duckId,
      "SELECT current_setting('threads') AS threads, current_setting('memory_limit') AS memory, " +
        "current_setting('max_temp_directory_size') AS temp",
    );
    expect(data.status).toBe('done');
    const [row] = data.results;
    expect(String(row.threads)).toBe('3');
    expect(row.memory).toBe('256.0 MiB');
    expect(row.temp).toBe('1.0 GiB');
  });

  it('lets no query raise them', async () => {
    const data = await run(s, duckId, 'SET threads = 8');
    expect(data.status).toBe('failed');
    expect(data.error).toMatch(/lock_configuration|locked/i);
  });
});
