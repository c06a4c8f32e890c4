import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createQrun, type Qrun } from '../../src/app/qrun.js';
import { loadConfig } from '../../src/config/config.js';
import { buildHttpApp } from '../../src/http/app.js';
import { bootstrap } from '../../src/service/bootstrap.js';
import { metadataDatabaseUrl } from './metadata-db.js';

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
  adminKey: string;
  partnerKey: string;
  qrun: Qrun;
  app: FastifyInstance;
  request<T = any>(method: string, path: string, options?: RequestOptions): Promise<Response<T>>;
  close(): Promise<void>;
}

/** A real qrun (store, services, HTTP) in this process, listening on a random loopback port. */
export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'qrun-test-'));
  // SQLite in dataDir, or a fresh PostgreSQL database with QRUN_TEST_METADATA=postgres; a caller's own
  // QRUN_DATABASE_URL wins.
  const metadata = env.QRUN_DATABASE_URL === undefined ? await metadataDatabaseUrl(dataDir) : undefined;
  const cleanup = async () => {
    try {
      await metadata?.cleanup();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  };
  let qrun: Qrun | undefined;
  let app: FastifyInstance | undefined;
  try {
    const config = loadConfig({
      QRUN_DATA_DIR: dataDir,
      QRUN_PORT: '0',
      QRUN_LOG_LEVEL: 'silent',
      ...(metadata ? { QRUN_DATABASE_URL: metadata.url } : {}),
      ...env,
    });
    qrun = await createQrun(config);
    await bootstrap(qrun);
    app = await buildHttpApp(qrun);
    await qrun.startBackground();
    await app.listen({ host: '127.0.0.1', port: 0 });
  } catch (err) {
    // A failed start must not leave a database behind.
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
    adminKey,
    partnerKey,
    qrun,
    app,
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
