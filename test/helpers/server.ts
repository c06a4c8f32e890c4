import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createQrun, type Qrun } from '../../src/app/qrun.js';
import type { Clock } from '../../src/core/time.js';
import { loadConfig } from '../../src/config/config.js';
import { buildHttpApp } from '../../src/http/app.js';
import { bootstrap } from '../../src/service/bootstrap.js';
import { anyPageExists, deploymentEnv } from './deployment.js';

export interface Auth {
  /** Bearer key (user or partner). */
  bearer?: string;
  /** Organization key, sent as Basic with an empty password. */
  basic?: string;
  /** A raw Authorization header. */
  raw?: string;
}

export interface RequestOptions {
  auth?: Auth;
  body?: unknown;
  /** Sent as is (for malformed JSON tests). */
  rawBody?: string;
  headers?: Record<string, string>;
}

export interface Response<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface TestServer {
  url: string;
  dataDir: string;
  /** QRUN_FILE_ROOT: a temporary directory beside dataDir (never inside it), unless `env` named one. */
  fileRoot: string;
  adminKey: string;
  partnerKey: string;
  qrun: Qrun;
  app: FastifyInstance;
  /**
   * Whether any page of the query is in the server's result store (files or S3 alike), read back through
   * the store: every page it was asked to write, or page 0 when none was.
   */
  pagesExist(queryId: string): Promise<boolean>;
  request<T = any>(method: string, path: string, options?: RequestOptions): Promise<Response<T>>;
  close(): Promise<void>;
}

export interface TestServerOptions {
  /**
   * Start on this existing data directory and leave it in place on close, e.g. to restart an
   * installation with other settings. Pass the installation's deployment variables in `env` (from
   * deploymentEnv(dataDir)), so that the restart reaches the same metadata store and secrets key.
   */
  dataDir?: string;
  /** The clock the services, the sweeper and idempotency read (see testClock in test/helpers/clock.ts). */
  clock?: Clock;
}

/**
 * A real qrun (store, services, HTTP) in this process, listening on a random loopback port, on the
 * deployment under test (test/helpers/deployment.ts): the embedded default, or PostgreSQL, Redis and
 * s3rver with QRUN_TEST_DEPLOYMENT=scale-out. Variables in `env` win over the deployment's.
 */
export async function startTestServer(
  env: Record<string, string> = {},
  options: TestServerOptions = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'qrun-test-'));
  // qrun refuses a file root inside its data directory; one given in `env` belongs to the caller.
  const ownFileRoot = env.QRUN_FILE_ROOT === undefined;
  const fileRoot = env.QRUN_FILE_ROOT ?? mkdtempSync(path.join(tmpdir(), 'qrun-test-files-'));
  let deployment: Awaited<ReturnType<typeof deploymentEnv>> | undefined;
  const cleanup = async () => {
    try {
      await deployment?.cleanup();
    } finally {
      if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
      if (ownFileRoot) rmSync(fileRoot, { recursive: true, force: true });
    }
  };
  let qrun: Qrun | undefined;
  let app: FastifyInstance | undefined;
  /** Pages the result store was asked to write, by query id: one past the highest page number. */
  const written = new Map<string, number>();
  try {
    deployment = await deploymentEnv(dataDir, env);
    const config = loadConfig({
      QRUN_DATA_DIR: dataDir,
      QRUN_FILE_ROOT: fileRoot,
      QRUN_PORT: '0',
      QRUN_LOG_LEVEL: 'silent',
      ...deployment.env,
      ...env,
    });
    // The `start` role, as `qrun start` runs it: API and worker in this one process, whatever the
    // deployment's parts.
    qrun = await createQrun(config, 'start', { clock: options.clock });
    const store = qrun.results;
    const putPage = store.putPage.bind(store);
    store.putPage = (queryId, page, bytes) => {
      written.set(queryId, Math.max(written.get(queryId) ?? 0, page + 1));
      return putPage(queryId, page, bytes);
    };
    await bootstrap(qrun);
    app = await buildHttpApp(qrun);
    await qrun.startBackground();
    await app.listen({ host: '127.0.0.1', port: 0 });
  } catch (err) {
    // A failed start must not leave a database, Redis keys or an s3rver behind.
    await app?.close();
    await qrun?.close();
    await cleanup();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `http://127.0.0.1:${port}`;
  const adminKey = readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim();
  const partnerKey = qrun.config.partnerKey ?? readFileSync(path.join(dataDir, 'partner-key'), 'utf8').trim();
  const started = { qrun, app };

  return {
    url,
    dataDir,
    fileRoot,
    adminKey,
    partnerKey,
    qrun,
    app,
    pagesExist: (queryId) => anyPageExists(started.qrun.results, queryId, written.get(queryId) ?? 1),
    request: (method, p, options) => request(url, method, p, options),
    async close() {
      try {
        await started.app.close();
        await started.qrun.close();
      } finally {
        await cleanup();
      }
    },
  };
}

export async function request<T = any>(
  baseUrl: string,
  method: string,
  p: string,
  options: RequestOptions = {},
): Promise<Response<T>> {
  const headers: Record<string, string> = { ...options.headers };
  const { auth } = options;
  if (auth?.bearer) headers.authorization = `Bearer ${auth.bearer}`;
  if (auth?.basic) headers.authorization = `Basic ${Buffer.from(`${auth.basic}:`).toString('base64')}`;
  if (auth?.raw) headers.authorization = auth.raw;
  let body: string | undefined;
  if (options.rawBody !== undefined) body = options.rawBody;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
  const res = await fetch(baseUrl + p, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}
