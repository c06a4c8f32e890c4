/**
 * Memory of a real qrun process while it runs one 5,000,000-row query end to end (database → pages on
 * disk → done), to show that memory stays flat however large the result is.
 * Run: npm run build && npx tsx bench/memory-5m.ts [postgresql|mysql] [rows]
 *
 * Starts the compiled CLI (dist/src/cli/qrun.js start) on a temporary data directory, measures its
 * idle RSS once a connection exists (driver loaded), then samples /proc/<pid>/status every 100 ms
 * while the query runs. VmHWM is the kernel's own high-water mark, so a spike between two samples
 * still counts. Needs Linux (/proc), PostgreSQL on 127.0.0.1:5432 (trust, user postgres, database
 * test) or MariaDB on 127.0.0.1:3306 (root, no password, database test).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const engine = process.argv[2] ?? 'postgresql';
const rows = Number(process.argv[3] ?? 5_000_000);
if (engine !== 'postgresql' && engine !== 'mysql')
  throw new Error('usage: memory-5m.ts [postgresql|mysql] [rows]');
if (!Number.isSafeInteger(rows) || rows < 1)
  throw new Error(`rows must be a positive integer, not ${process.argv[3]}`);

const QUERIES: Record<string, string> = {
  postgresql: `SELECT n::int8 AS id, md5(n::text) AS hash, (n * 1.000001)::numeric(20,6) AS amount,
      timestamptz '2024-01-01 00:00:00+00' + n * interval '1 second' AS at
    FROM generate_series(1, ${rows}) AS n`,
  mysql: `SELECT seq AS id, MD5(seq) AS hash, CAST(seq * 1.000001 AS DECIMAL(20,6)) AS amount,
      TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND AS at
    FROM seq_1_to_${rows}`,
};
const CONNECTIONS: Record<string, Record<string, unknown>> = {
  postgresql: { hostname: '127.0.0.1', port: 5432, database: 'test', username: 'postgres' },
  mysql: { hostname: '127.0.0.1', port: 3306, database: 'test', username: 'root' },
};

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'dist/src/cli/qrun.js');
const MB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
    srv.on('error', reject);
  });
}

/** VmRSS and VmHWM of a process, in bytes. */
function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

function diskBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const s = statSync(path.join(dir, entry));
    if (s.isFile()) total += s.size;
  }
  return total;
}

const mb = (bytes: number) => (bytes / MB).toFixed(1);

/** The parts of API responses this script reads. */
interface Body {
  data: { id: string; status: string; count?: number; fields?: string[]; error?: string };
}

const dataDir = mkdtempSync(path.join(tmpdir(), 'qrun-bench-'));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const child = spawn(process.execPath, [bin, 'start'], {
  env: { ...process.env, QRUN_DATA_DIR: dataDir, QRUN_PORT: String(port), QRUN_LOG_LEVEL: 'warn' },
  stdio: ['ignore', 'ignore', 'inherit'],
});
const pid = child.pid!;

try {
  for (let ready = false; !ready;) {
    if (child.exitCode !== null) throw new Error(`qrun exited with code ${child.exitCode}`);
    ready = await fetch(`${base}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (!ready) await sleep(100);
  }
  const key = readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim();
  const call = async (method: string, p: string, body?: unknown): Promise<Body> => {
    const res = await fetch(base + p, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as Body;
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };

  // Creating the connection validates it, which loads the driver: idle includes it.
  const connection = await call('POST', '/api/connections', {
    name: `bench ${engine}`,
    type: engine,
    configuration: CONNECTIONS[engine],
  });
  await sleep(1000);
  const idle = memory(pid);

  let maxRss = idle.rss;
  const sampler = setInterval(() => {
    try {
      maxRss = Math.max(maxRss, memory(pid).rss);
    } catch {
      // the process is gone; the main loop reports it
    }
  }, 100);

  const started = process.hrtime.bigint();
  const submitted = await call('POST', `/api/connections/${connection.data.id}/query`, {
    query: QUERIES[engine],
  });
  const id = submitted.data.id;
  let result: Body;
  do {
    result = await call('GET', `/api/queries/${id}?wait=60`);
  } while (result.data.status === 'created' || result.data.status === 'running');
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(sampler);
  const end = memory(pid);
  maxRss = Math.max(maxRss, end.rss);
  if (result.data.status !== 'done')
    throw new Error(`query ended ${result.data.status}: ${result.data.error}`);

  const count = result.data.count ?? 0;
  console.log(`engine:            ${engine}`);
  console.log(
    `rows:              ${count.toLocaleString('en-US')} (${(result.data.fields ?? []).join(', ')})`,
  );
  console.log(`pages on disk:     ${mb(diskBytes(path.join(dataDir, 'results')))} MB`);
  console.log(`idle RSS:          ${mb(idle.rss)} MB (VmHWM so far ${mb(idle.hwm)} MB)`);
  console.log(`peak RSS (VmHWM):  ${mb(end.hwm)} MB (highest 100 ms sample ${mb(maxRss)} MB)`);
  console.log(`peak − idle:       ${mb(end.hwm - idle.rss)} MB`);
  console.log(`RSS at the end:    ${mb(end.rss)} MB`);
  console.log(`elapsed:           ${seconds.toFixed(1)} s`);
  console.log(`throughput:        ${Math.round(count / seconds).toLocaleString('en-US')} rows/s`);
} finally {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
  rmSync(dataDir, { recursive: true, force: true });
}
