import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { deleteRedisKeys } from '../../test/helpers/deployment.js';
import { startS3rver } from '../../test/helpers/s3rver.js';
import { PG, qrunConnection, type Engine } from './databases.js';
import { ROOT, freePort, log, startChild, waitForHttp, type Child } from './util.js';

const BIN = path.join(ROOT, 'dist/src/cli/qrun.js');
const REDIS_URL = 'redis://127.0.0.1:6379';
/**
 * The bench sends thousands of requests a second with one key. The rate limit stays on, so its check is
 * part of every measured request, but far above anything the bench sends (the default is 600 a minute).
 * QRUN_RATE_LIMIT_PER_MINUTE=0 in the bench's environment measures without it.
 */
const RATE_LIMIT = { QRUN_RATE_LIMIT_PER_MINUTE: process.env.QRUN_RATE_LIMIT_PER_MINUTE ?? '100000000' };
const running = new Set<Qrun>();
/** Clean-ups of scale-out deployments still starting. */
const starting = new Set<() => Promise<void>>();

/** The parts of qrun's responses the bench reads. */
export interface QueryBody {
  data: { id: string; status: string; count?: number; error?: string | null };
  links?: { next: string | null; previous: string | null };
}

export interface StartOptions {
  /** Extra QRUN_* settings. */
  env?: Record<string, string>;
  cpuProfDir?: string | undefined;
  /** Another build's dist/src/cli/qrun.js (bench/compare.ts); default this checkout's. */
  bin?: string;
}

/**
 * A running qrun the bench talks to over HTTP. `Qrun.start()`: one `qrun start` child process on the
 * embedded default (SQLite metadata, result files in a temporary data directory); its RSS is its own,
 * not the bench's. `Qrun.startScaleOut()`: one `qrun api` and N `qrun worker` processes on PostgreSQL
 * metadata, Redis and S3 (s3rver). stop() stops the processes and removes everything they made.
 */
export class Qrun {
  private constructor(
    /** The process that serves HTTP first, then any others. */
    private readonly children: Child[],
    private readonly dataDir: string,
    readonly base: string,
    readonly key: string,
    private readonly cleanups: (() => Promise<void>)[] = [],
  ) {
    running.add(this);
  }

  /** Stops every qrun still running (the bench's Ctrl-C handler: scenarios' own finally blocks never run). */
  static async stopAll(): Promise<void> {
    for (const qrun of [...running]) await qrun.stop();
    for (const undo of [...starting]) await undo();
  }

  get pid(): number {
    return this.children[0]!.pid;
  }

  /** Where the embedded default keeps result pages. */
  get resultsDir(): string {
    return path.join(this.dataDir, 'results');
  }

  get authorization(): string {
    return `Bearer ${this.key}`;
  }

  static async start(options: StartOptions = {}): Promise<Qrun> {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'qrun-bench-'));
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const nodeArgs = options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`] : [];
    const child = startChild(process.execPath, [...nodeArgs, options.bin ?? BIN, 'start'], {
      env: {
        ...process.env,
        QRUN_DATA_DIR: dataDir,
        QRUN_PORT: String(port),
        QRUN_LOG_LEVEL: 'warn',
        ...RATE_LIMIT,
        ...options.env,
      },
    });
    try {
      await waitForHttp(`${base}/readyz`, child);
      const key = readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim();
      return new Qrun([child], dataDir, base, key);
    } catch (err) {
      await child.stop();
      rmSync(dataDir, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * The scale-out deployment on this machine: a fresh metadata database, a Redis key prefix of its
   * own, s3rver for the pages, one api and `workers` workers. Everything goes again at stop().
   */
  static async startScaleOut(options: StartOptions & { workers: number }): Promise<Qrun> {
    const suffix = randomBytes(4).toString('hex');
    const metaDb = `qrun_bench_meta_${suffix}`;
    const prefix = `qrun-bench-${suffix}`;
    const cleanups: (() => Promise<void>)[] = [];
    const children: Child[] = [];
    const dirs: string[] = [];
    let undone = false;
    // Called after every await that precedes a spawn: a Ctrl-C may have undone everything meanwhile.
    const stillWanted = () => {
      if (undone) throw new Error('the scale-out deployment was stopped while starting');
    };
    const undo = async () => {
      undone = true;
      for (const child of children.splice(0)) await child.stop();
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
      for (const cleanup of cleanups.splice(0).reverse()) {
        await cleanup().catch((err: unknown) => log(`scale-out clean-up failed: ${String(err)}`));
      }
    };
    starting.add(undo);
    try {
      // Each clean-up is registered as soon as its thing exists, then stillWanted() runs: after a
      // Ctrl-C the catch below calls undo() again, which takes whatever was registered late.
      await adminQuery(`CREATE DATABASE ${metaDb}`);
      cleanups.push(() => adminQuery(`DROP DATABASE IF EXISTS ${metaDb} WITH (FORCE)`));
      cleanups.push(() => deleteRedisKeys(REDIS_URL, prefix));
      stillWanted();
      const s3 = await startS3rver({ bucket: 'qrun-bench' });
      cleanups.push(() => s3.close());
      stillWanted();
      const env = {
        ...process.env,
        QRUN_DATABASE_URL: `postgres://${PG.user}@${PG.host}:${PG.port}/${metaDb}`,
        QRUN_REDIS_URL: REDIS_URL,
        QRUN_REDIS_PREFIX: prefix,
        QRUN_SECRET_KEY: randomBytes(32).toString('base64'),
        // qrun api refuses to start without it: every api process must accept the same partner key.
        QRUN_PARTNER_KEY: `qrun_p_${randomBytes(32).toString('base64url')}`,
        QRUN_LOG_LEVEL: 'warn',
        // The AWS SDK announces its future Node 22 requirement once per process.
        NODE_NO_WARNINGS: '1',
        ...s3.env(prefix),
        ...RATE_LIMIT,
        ...options.env,
      };
      const bin = options.bin ?? BIN;
      const tempDir = () => {
        const dir = mkdtempSync(path.join(tmpdir(), 'qrun-bench-'));
        dirs.push(dir);
        return dir;
      };
      const apiDir = tempDir();
      const port = await freePort();
      stillWanted();
      const api = startChild(process.execPath, [bin, 'api'], {
        env: { ...env, QRUN_DATA_DIR: apiDir, QRUN_PORT: String(port) },
      });
      children.push(api);
      const base = `http://127.0.0.1:${port}`;
      await waitForHttp(`${base}/readyz`, api);
      for (let i = 0; i < options.workers; i++) {
        const workerPort = await freePort();
        stillWanted();
        const worker = startChild(process.execPath, [bin, 'worker'], {
          env: { ...env, QRUN_DATA_DIR: tempDir(), QRUN_WORKER_PORT: String(workerPort) },
        });
        children.push(worker);
        await waitForHttp(`http://127.0.0.1:${workerPort}/readyz`, worker);
      }
      stillWanted();
      const key = readFileSync(path.join(apiDir, 'admin-key'), 'utf8').trim();
      return new Qrun(children, apiDir, base, key, [undo]);
    } catch (err) {
      await undo();
      throw err;
    } finally {
      starting.delete(undo);
    }
  }

  async call<T>(method: string, route: string, body?: unknown): Promise<T> {
    const res = await fetch(this.base + route, {
      method,
      headers: { authorization: this.authorization, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text.slice(0, 500)}`);
    return JSON.parse(text) as T;
  }

  async createConnection(engine: Engine, database: string): Promise<string> {
    const created = await this.call<{ data: { id: string } }>('POST', '/api/connections', {
      name: `bench ${engine} ${database}`,
      type: engine,
      configuration: qrunConnection(engine, database),
    });
    return created.data.id;
  }

  /**
   * Submits `sql` and long-polls (?wait=60) until the query is terminal; throws unless it ends
   * `done`. The status response carries the first page when done; only its head is parsed.
   */
  /** Submits `sql` on the connection; the query runs in the background. */
  async submit(connectionId: string, sql: string): Promise<{ id: string }> {
    const submitted = await this.call<QueryBody>('POST', `/api/connections/${connectionId}/query`, {
      query: sql,
    });
    return { id: submitted.data.id };
  }

  async run(connectionId: string, sql: string): Promise<{ id: string; count: number }> {
    const { id } = await this.submit(connectionId, sql);
    for (;;) {
      const res = await fetch(`${this.base}/api/queries/${id}?wait=60`, {
        headers: { authorization: this.authorization },
      });
      const body = Buffer.from(await res.arrayBuffer());
      if (!res.ok) throw new Error(`GET /api/queries/${id}: ${res.status} ${body.toString().slice(0, 500)}`);
      const head = statusHead(body);
      if (head.status === 'created' || head.status === 'running') continue;
      if (head.status !== 'done') throw new Error(`query ${id} ended ${head.status}: ${head.error}`);
      return { id, count: head.count ?? 0 };
    }
  }

  async stop(): Promise<void> {
    running.delete(this);
    for (const child of this.children) await child.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
    for (const cleanup of this.cleanups) await cleanup();
  }
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ ...PG, database: 'postgres' });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * status, count and error of a GET /api/queries/{id} body without parsing the page's rows: a `done`
 * body holds `"results":[…]` after the fields read here, and `links` after it.
 */
export function statusHead(body: Buffer): { status: string; count?: number; error?: string } {
  const resultsAt = body.indexOf('"results":');
  if (resultsAt < 0) {
    const parsed = JSON.parse(body.toString()) as QueryBody;
    return { status: parsed.data.status, error: parsed.data.error ?? undefined };
  }
  const head = body.subarray(0, Math.min(resultsAt, 4096)).toString();
  const status = /"status":"(\w+)"/.exec(head)?.[1] ?? 'unknown';
  const count = /"count":(\d+)/.exec(head)?.[1];
  return { status, count: count === undefined ? undefined : Number(count) };
}

/** links.next of a page body, read from its tail (the rows before it are not parsed). */
export function nextLink(body: Buffer): string | null {
  const at = body.lastIndexOf('"links":');
  if (at < 0) return null;
  const links = JSON.parse(body.subarray(at + 8, body.length - 1).toString()) as { next: string | null };
  return links.next;
}
