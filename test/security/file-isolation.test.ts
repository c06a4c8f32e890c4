/**
 * Attack: organization B reads or writes organization A's files through `sqlite` and `duckdb`
 * connections (A's relative path, `..`, an absolute path, a symlink in B's directory), or from DuckDB
 * SQL (glob over the whole file root, read_csv and ATTACH of A's files, COPY … TO into A's directory,
 * extensions, loosening the settings). Defences: each organization's files live in
 * `$QRUN_FILE_ROOT/<organization id>/` (0700), paths are relative to it with no `..` or symlinks, DuckDB
 * sessions are confined to it (allowed_directories, enable_external_access off, configuration
 * locked), SQLite cannot ATTACH or load extensions, and file connections are read-only unless
 * `"read_only": false`. Everything through real HTTP; A's files are byte-for-byte unchanged at the end.
 */
import { createHash } from 'node:crypto';
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runQrun } from '../helpers/process.js';
import { startTestServer, type Auth, type Response, type TestServer } from '../helpers/server.js';
import { waitForQueryEnd } from '../helpers/wait.js';

const A_SECRET = 'top secret of organization A';

let s: TestServer;
let root: string;
let aDir: string;
let bDir: string;
let aId: string;
let bId: string;
let a: Auth;
let b: Auth;
/** sha256 of every file in A's directory, before any attack. */
let aHashes: Record<string, string>;

function hashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    out[name] = createHash('sha256')
      .update(readFileSync(path.join(dir, name)))
      .digest('hex');
  }
  return out;
}

/** Every response B got, to check at the end that none of them revealed A's file names or contents. */
const seenByB: string[] = [];

async function asB(method: string, p: string, body?: unknown): Promise<Response> {
  const r = await s.request(method, p, { auth: b, body });
  seenByB.push(r.text);
  return r;
}

async function createConnection(auth: Auth, type: string, configuration: Record<string, unknown>) {
  const r =
    auth === b
      ? await asB('POST', '/api/connections', { name: `c-${Math.random()}`, type, configuration })
      : await s.request('POST', '/api/connections', {
          auth,
          body: { name: `c-${Math.random()}`, type, configuration },
        });
  return r;
}

/** Runs `sql` as B on a connection and returns the finished query's data (status done or failed). */
async function runAsB(
  connectionId: string,
  sql: string,
): Promise<{ status: string; results?: unknown[]; error?: string }> {
  const submitted = await asB('POST', `/api/connections/${connectionId}/query`, { query: sql });
  expect(submitted.status, submitted.text).toBe(200);
  // Read through asB, so that what B was told is recorded too.
  const ended = await waitForQueryEnd({ request: (method, p) => asB(method, p) }, b, submitted.body.data.id, {
    waitSeconds: 10,
  });
  return ended.body.data;
}

async function refusedAsB(connectionId: string, sql: string, why: RegExp): Promise<void> {
  const data = await runAsB(connectionId, sql);
  expect(data.status, `${sql} → ${JSON.stringify(data)}`).toBe('failed');
  expect(data.error).toMatch(why);
  expect(data.results).toBeUndefined();
}

/** A 400 invalid_configuration naming configuration.path, without the server's paths in it. */
function expectPathRefused(r: Response, what: string): void {
  expect(r.status, `${what}: ${r.text}`).toBe(400);
  expect(r.body.key).toBe('invalid_configuration');
  expect(r.body.message).toContain('configuration.path');
  expect(r.text).not.toContain(root);
}

beforeAll(async () => {
  s = await startTestServer();
  root = s.fileRoot;
  a = { bearer: s.adminKey };
  aId = (await s.request('GET', '/api/me', { auth: a })).body.data.organization_id;

  const partner = { bearer: s.partnerKey };
  const org = await s.request('POST', '/api/organizations', { auth: partner, body: { name: 'org-b' } });
  expect(org.status, org.text).toBe(200);
  bId = org.body.data.id;
  const user = await s.request('POST', `/api/organizations/${bId}/users`, {
    auth: partner,
    body: { email: 'eve@b.example', role: 'admin' },
  });
  const key = await s.request('POST', `/api/organizations/${bId}/users/${user.body.data.id}/keys`, {
    auth: partner,
  });
  b = { bearer: key.body.data.value };

  // A's files, as the operator puts them: a SQLite and a DuckDB database and a CSV file.
  aDir = path.join(root, aId);
  bDir = path.join(root, bId);
  await mkdir(aDir, { mode: 0o700 });
  const sqlite = new Database(path.join(aDir, 'a.sqlite'));
  sqlite.exec(`CREATE TABLE secrets (v TEXT); INSERT INTO secrets VALUES ('${A_SECRET}')`);
  sqlite.close();
  const duck = await DuckDBInstance.create(path.join(aDir, 'a.duckdb'));
  const connection = await duck.connect();
  await connection.run(`CREATE TABLE secrets AS SELECT '${A_SECRET}' AS v`);
  connection.closeSync();
  duck.closeSync();
  writeFileSync(path.join(aDir, 'a.csv'), `v\n${A_SECRET}\n`);
  aHashes = hashes(aDir);
});

afterAll(async () => {
  await s?.close();
});

describe("organization A's own connection", () => {
  it('is created with the path as given and shown that way, never as an absolute path', async () => {
    const r = await createConnection(a, 'sqlite', { path: 'a.sqlite' });
    expect(r.status, r.text).toBe(200);
    expect(r.body.data.configuration).toEqual({ path: 'a.sqlite', read_only: true });
    expect(r.text).not.toContain(root);
    const list = await s.request('GET', '/api/connections', { auth: a });
    expect(list.text).not.toContain(root);
  });
});

describe("organization B cannot name A's files", () => {
  it("A's relative path is not in B's directory: 400, and B's directory now exists with mode 0700", async () => {
    for (const type of ['sqlite', 'duckdb']) {
      const file = type === 'sqlite' ? 'a.sqlite' : 'a.duckdb';
      const r = await createConnection(b, type, { path: file });
      expectPathRefused(r, `${type} ${file}`);
      expect(r.body.message).toContain('does not exist');
    }
    const mode = statSync(bDir);
    expect(mode.isDirectory()).toBe(true);
    expect(mode.mode & 0o777).toBe(0o700);
  });

  it('`..`, absolute paths and symlinks into A’s directory are 400 invalid_configuration', async () => {
    symlinkSync(path.join(aDir, 'a.sqlite'), path.join(bDir, 'evil.sqlite'));
    symlinkSync(path.join(aDir, 'a.duckdb'), path.join(bDir, 'evil.duckdb'));
    symlinkSync(aDir, path.join(bDir, 'a-dir'));
    const attempts: [string, string][] = [
      ['sqlite', `../${aId}/a.sqlite`],
      ['sqlite', path.join(aDir, 'a.sqlite')],
      ['sqlite', 'evil.sqlite'],
      ['sqlite', 'a-dir/a.sqlite'],
      ['duckdb', `../${aId}/a.duckdb`],
      ['duckdb', `./../${aId}/a.duckdb`],
      ['duckdb', path.join(aDir, 'a.duckdb')],
      ['duckdb', 'evil.duckdb'],
      ['duckdb', 'a-dir/a.duckdb'],
    ];
    for (const [type, p] of attempts) {
      for (const read_only of [true, false]) {
        expectPathRefused(await createConnection(b, type, { path: p, read_only }), `${type} ${p}`);
        const tested = await asB('POST', '/api/connections/test', { type, configuration: { path: p } });
        expectPathRefused(tested, `test ${type} ${p}`);
      }
    }
  });

  it('nor through PUT on a connection of its own', async () => {
    new Database(path.join(bDir, 'b.sqlite')).close();
    const own = await createConnection(b, 'sqlite', { path: 'b.sqlite' });
    expect(own.status, own.text).toBe(200);
    for (const p of [`../${aId}/a.sqlite`, path.join(aDir, 'a.sqlite'), 'evil.sqlite']) {
      const r = await asB('PUT', `/api/connections/${own.body.data.id}`, { configuration: { path: p } });
      expectPathRefused(r, `PUT ${p}`);
    }
    const after = await asB('GET', `/api/connections/${own.body.data.id}`);
    expect(after.body.data.configuration).toEqual({ path: 'b.sqlite', read_only: true });
  });

  afterAll(() => {
    // Only someone with a shell on the server can plant links (no SQL qrun runs creates one), and
    // DuckDB SQL would follow them: docs/OPERATIONS.md tells operators never to. Gone for the rest.
    for (const link of ['evil.sqlite', 'evil.duckdb', 'a-dir']) rmSync(path.join(bDir, link));
  });
});

describe("organization B's DuckDB sessions reach B's directory and nothing else", () => {
  let memory: string;
  let memoryWritable: string;

  beforeAll(async () => {
    writeFileSync(path.join(bDir, 'b.csv'), 'v\nmine\n');
    const ro = await createConnection(b, 'duckdb', { path: ':memory:' });
    expect(ro.status, ro.text).toBe(200);
    memory = ro.body.data.id;
    const rw = await createConnection(b, 'duckdb', { path: ':memory:', read_only: false });
    expect(rw.status, rw.text).toBe(200);
    memoryWritable = rw.body.data.id;
  });

  it("reads B's own files", async () => {
    const data = await runAsB(memory, `SELECT v FROM read_csv('${bDir}/b.csv')`);
    expect(data.status).toBe('done');
    expect(data.results).toEqual([{ v: 'mine' }]);
    const listed = await runAsB(memory, `SELECT file FROM glob('${bDir}/*.csv')`);
    expect(listed.results).toEqual([{ file: path.join(bDir, 'b.csv') }]);
  });

  it("lists and reads nothing outside B's directory", async () => {
    for (const id of [memory, memoryWritable]) {
      const everything = await runAsB(id, `SELECT file FROM glob('${root}/**')`);
      expect(everything.status).toBe('failed');
      for (const name of ['a.sqlite', 'a.duckdb', 'a.csv'])
        expect(JSON.stringify(everything)).not.toContain(name);
      const own = await runAsB(id, `SELECT file FROM glob('${bDir}/**')`);
      for (const name of ['a.sqlite', 'a.duckdb', 'a.csv']) expect(JSON.stringify(own)).not.toContain(name);
      await refusedAsB(id, `SELECT * FROM glob('${root}/**')`, /Permission Error/);
      await refusedAsB(id, `SELECT * FROM glob('${bDir}/../**')`, /Permission Error/);
      await refusedAsB(id, `SELECT * FROM read_csv('${aDir}/a.csv')`, /Permission Error/);
      await refusedAsB(id, `SELECT * FROM read_csv('${bDir}/../${aId}/a.csv')`, /Permission Error/);
      await refusedAsB(id, "SELECT * FROM read_text('/etc/passwd')", /Permission Error/);
    }
  });

  it("writes nothing outside B's directory, even with read_only false", async () => {
    await refusedAsB(memoryWritable, `COPY (SELECT 1 AS x) TO '${aDir}/evil.csv'`, /Permission Error/);
    await refusedAsB(memoryWritable, `COPY (SELECT 1 AS x) TO '${root}/evil.csv'`, /Permission Error/);
    await refusedAsB(
      memoryWritable,
      `COPY (SELECT 1 AS x) TO '${bDir}/../${aId}/evil.csv'`,
      /Permission Error/,
    );
    await refusedAsB(memoryWritable, `ATTACH '${aDir}/a.duckdb' AS stolen`, /Permission Error/);
    await refusedAsB(memoryWritable, `ATTACH '${aDir}/new.duckdb' AS planted`, /Permission Error/);
    await refusedAsB(memoryWritable, `EXPORT DATABASE '${aDir}/export'`, /Permission Error/);
    expect(readdirSync(root).sort()).toEqual([aId, bId].sort());
  });

  it('loads no extension and cannot loosen its settings', async () => {
    for (const id of [memory, memoryWritable]) {
      await refusedAsB(id, 'INSTALL httpfs', /Permission Error/);
      await refusedAsB(id, 'LOAD httpfs', /Permission Error/);
      await refusedAsB(id, `LOAD '${bDir}/x.duckdb_extension'`, /Permission Error/);
      for (const sql of [
        "SET allowed_directories = ['/']",
        `SET allowed_paths = ['${aDir}/a.csv']`,
        'SET enable_external_access = true',
        'RESET allowed_directories',
        'SET lock_configuration = false',
        "SET allowed_configs = ['allowed_directories']",
        "SET temp_directory = '/tmp'",
      ]) {
        await refusedAsB(id, sql, /configuration has been locked/);
      }
    }
  });

  it('read_only (the default) refuses COPY, EXPORT DATABASE and ATTACH even inside B’s directory', async () => {
    for (const sql of [
      `COPY (SELECT 1 AS x) TO '${bDir}/out.csv'`,
      `EXPORT DATABASE '${bDir}/export'`,
      `/* a comment first */ EXPORT DATABASE '${bDir}/export2'`,
      `ATTACH '${bDir}/new.duckdb' AS n`,
    ]) {
      await refusedAsB(memory, sql, /read-only/);
    }
    expect(readdirSync(bDir).sort()).toEqual(['b.csv', 'b.sqlite']);
  });

  it("read_only false writes inside B's directory", async () => {
    const copied = await runAsB(memoryWritable, `COPY (SELECT 42 AS x) TO '${bDir}/out.csv'`);
    expect(copied.status, JSON.stringify(copied)).toBe('done');
    expect(readFileSync(path.join(bDir, 'out.csv'), 'utf8')).toBe('x\n42\n');
  });
});

describe("organization B's file connections", () => {
  it('SQLite refuses ATTACH (of any file) and load_extension()', async () => {
    const own = await createConnection(b, 'sqlite', { path: 'b.sqlite', read_only: false });
    expect(own.status, own.text).toBe(200);
    const id = own.body.data.id;
    await refusedAsB(id, `ATTACH DATABASE '${aDir}/a.sqlite' AS stolen`, /too many attached/);
    await refusedAsB(id, `ATTACH DATABASE '${bDir}/b.sqlite' AS again`, /too many attached/);
    await refusedAsB(id, `VACUUM INTO '${aDir}/evil.sqlite'`, /too many attached/);
    await refusedAsB(
      id,
      "SELECT load_extension('/usr/lib/x86_64-linux-gnu/libsqlite3.so.0')",
      /not authorized/,
    );
  });

  it('are read-only by default, and read_only false writes the file in B’s directory', async () => {
    const duck = await DuckDBInstance.create(path.join(bDir, 'b.duckdb'));
    duck.closeSync();

    for (const [type, file] of [
      ['sqlite', 'b.sqlite'],
      ['duckdb', 'b.duckdb'],
    ] as const) {
      const readOnly = await createConnection(b, type, { path: file });
      expect(readOnly.status, readOnly.text).toBe(200);
      await refusedAsB(readOnly.body.data.id, 'CREATE TABLE t (x INTEGER)', /read-?only/i);

      const writable = await createConnection(b, type, { path: file, read_only: false });
      expect(writable.status, writable.text).toBe(200);
      expect(writable.body.data.configuration).toEqual({ path: file, read_only: false });
      const created = await runAsB(writable.body.data.id, 'CREATE TABLE t (x INTEGER)');
      expect(created.status, JSON.stringify(created)).toBe('done');
      const inserted = await runAsB(writable.body.data.id, 'INSERT INTO t VALUES (7)');
      expect(inserted.status, JSON.stringify(inserted)).toBe('done');

      // The read-only connection sees the write, and still cannot make one.
      const read = await runAsB(readOnly.body.data.id, 'SELECT x FROM t');
      expect(read.results).toEqual([{ x: 7 }]);
      await refusedAsB(readOnly.body.data.id, 'INSERT INTO t VALUES (8)', /read-?only/i);
    }
    const sqlite = new Database(path.join(bDir, 'b.sqlite'), { readonly: true });
    expect(sqlite.prepare('SELECT x FROM t').all()).toEqual([{ x: 7 }]);
    sqlite.close();
  });
});

describe('afterwards', () => {
  it("A's files are byte-for-byte unchanged, nothing was added to A's directory, and B never saw A's data", () => {
    expect(hashes(aDir)).toEqual(aHashes);
    expect(seenByB.length).toBeGreaterThan(50);
    for (const text of seenByB) expect(text).not.toContain(A_SECRET);
  });
});

describe('start-up', () => {
  it('qrun refuses to start when QRUN_FILE_ROOT lies inside QRUN_DATA_DIR, in one line saying so', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'qrun-overlap-'));
    try {
      const proc = runQrun(['start'], {
        QRUN_DATA_DIR: dataDir,
        QRUN_FILE_ROOT: path.join(dataDir, 'files'),
      });
      const exit = await proc.exited;
      expect(exit.code).toBe(1);
      const lines = proc.stderr().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^qrun: QRUN_FILE_ROOT: .*overlap/);
      // It stopped before creating anything.
      expect(readdirSync(dataDir)).toEqual([]);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
