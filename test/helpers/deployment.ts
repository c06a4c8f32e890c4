/**
 * The deployment switch of the test suite. `npm test` runs two passes:
 *
 * 1. `vitest run`: every test on the embedded default (SQLite metadata, in-process dispatch and
 *    wake-ups, result pages as files);
 * 2. `npm run test:scale-out` (QRUN_TEST_DEPLOYMENT=scale-out): the files that depend on the deployment
 *    again, on the scale-out deployment: PostgreSQL metadata (a fresh database per server), BullMQ dispatch
 *    and Redis pub/sub wake-ups (a unique QRUN_REDIS_PREFIX per server, its keys deleted afterwards) and
 *    S3 pages on s3rver (one per test file, a key prefix per server).
 *
 * Tests reach the deployment only through these helpers: startTestServer (test/helpers/server.ts),
 * deploymentEnv() for `qrun` child processes, metadataDatabaseUrl(), openResultStore() and the flags
 * below. The files that use them, directly or through a helper, are the second pass: test/scale-out-suites.ts
 * lists them, and test/unit/scale-out-suites.test.ts (reading the code with helpers/deployment-suites.ts)
 * fails when that list is out of date. Tests that build their parts by hand (connectors, stores, the
 * dispatchers, test/e2e/scale-out.test.ts with its own processes) are the same on both deployments and run
 * once.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Redis } from 'ioredis';
import { createResultStore } from '../../src/app/deployment.js';
import { loadConfig } from '../../src/config/config.js';
import type { ResultStore } from '../../src/results/result-store.js';
import { createPostgresMetadataDatabase, type MetadataDatabase } from './metadata-db.js';
import { startS3rver, type S3rver } from './s3rver.js';

export type TestDeployment = 'embedded' | 'scale-out';

function readSwitch(): TestDeployment {
  // The old switch only moved the metadata store; failing beats silently running the embedded default.
  if (process.env.QRUN_TEST_METADATA !== undefined) {
    throw new Error(
      'QRUN_TEST_METADATA is gone: use QRUN_TEST_DEPLOYMENT=scale-out (npm run test:scale-out)',
    );
  }
  const value = process.env.QRUN_TEST_DEPLOYMENT ?? '';
  if (value === '' || value === 'embedded') return 'embedded';
  if (value === 'scale-out') return 'scale-out';
  throw new Error(`QRUN_TEST_DEPLOYMENT must be "embedded" or "scale-out", not ${JSON.stringify(value)}`);
}

export const testDeployment: TestDeployment = readSwitch();
export const onScaleOut = testDeployment === 'scale-out';
/** The metadata store follows the deployment: PostgreSQL when scaled out, SQLite otherwise. */
export const metadataOnPostgres = onScaleOut;

/** Shared with the other suites (QRUN_TEST_REDIS_URL moves them all). */
export const TEST_REDIS_URL = process.env.QRUN_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * The metadata store URL for a test: a new PostgreSQL database on the scale-out pass, otherwise the
 * SQLite file inside `dataDir` (which the caller removes with the directory).
 */
export async function metadataDatabaseUrl(dataDir: string): Promise<MetadataDatabase> {
  if (metadataOnPostgres) return createPostgresMetadataDatabase();
  return { url: `sqlite:${path.join(dataDir, 'qrun.sqlite')}`, cleanup: async () => {} };
}

export interface DeploymentEnv {
  /** QRUN_* (and AWS_*) variables selecting the deployment, for loadConfig() or a child process. */
  env: Record<string, string>;
  /** Drops the database, deletes the Redis keys, releases s3rver; run it after the processes are gone. */
  cleanup(): Promise<void>;
}

/**
 * The environment of one qrun installation on the deployment under test, with `dataDir` as its data
 * directory. Parts that `given` already sets (say, its own QRUN_DATABASE_URL) are not created; the
 * caller spreads `given` over `env`.
 *
 * The embedded values are spelled out too, so that QRUN_* variables in a developer's shell (which
 * child processes inherit) cannot move a child to another deployment.
 */
export async function deploymentEnv(
  dataDir: string,
  given: Record<string, string> = {},
): Promise<DeploymentEnv> {
  if (!onScaleOut) {
    return {
      env: {
        QRUN_DATABASE_URL: `sqlite:${path.join(dataDir, 'qrun.sqlite')}`,
        QRUN_RESULTS_URL: `file:${path.join(dataDir, 'results')}`,
        // Empty reads as unset.
        QRUN_REDIS_URL: '',
      },
      cleanup: async () => {},
    };
  }

  const steps: (() => Promise<void>)[] = [];
  const cleanup = () => runAll(steps.splice(0).reverse());
  const env: Record<string, string> = {
    // The api and worker roles refuse to start without a shared key; the start role would generate one.
    QRUN_SECRET_KEY: randomBytes(32).toString('base64'),
  };
  try {
    if (given.QRUN_DATABASE_URL === undefined) {
      const metadata = await createPostgresMetadataDatabase();
      steps.push(() => metadata.cleanup());
      env.QRUN_DATABASE_URL = metadata.url;
    }
    if (given.QRUN_REDIS_URL === undefined) {
      // Redis is shared with other test files and other people's runs: one prefix per installation,
      // and only its keys are deleted (never FLUSHALL).
      const prefix = given.QRUN_REDIS_PREFIX ?? `qrun_test_${randomBytes(6).toString('hex')}`;
      steps.push(() => deleteRedisKeys(TEST_REDIS_URL, prefix));
      env.QRUN_REDIS_URL = TEST_REDIS_URL;
      env.QRUN_REDIS_PREFIX = prefix;
    }
    if (given.QRUN_RESULTS_URL === undefined) {
      const s3 = await acquireS3rver();
      steps.push(s3.release);
      Object.assign(env, s3.server.env(`results-${randomBytes(6).toString('hex')}`), {
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      });
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  let done: Promise<void> | undefined;
  return { env, cleanup: () => (done ??= cleanup()) };
}

/**
 * A result store of its own on the store an installation with `env` uses (files or S3), for tests that
 * look at the pages a child process wrote. The caller closes it.
 */
export function openResultStore(env: Record<string, string>): ResultStore {
  return createResultStore(loadConfig({ QRUN_LOG_LEVEL: 'silent', ...env }));
}

/**
 * Whether any of pages 0 … pages-1 of the query is in the store: the deployment-neutral form of "are
 * there page files". Pages are numbered from 0 and written in order, so page 0 exists whenever any does,
 * but a delete that stopped half-way may leave later ones; callers pass how many were written.
 */
export async function anyPageExists(store: ResultStore, queryId: string, pages = 1): Promise<boolean> {
  for (let page = 0; page < Math.max(1, pages); page++) {
    if ((await store.getPage(queryId, page)) !== undefined) return true;
  }
  return false;
}

/** How many pages of the query the store holds, counted from page 0 up to the first missing one. */
export async function storedPages(store: ResultStore, queryId: string): Promise<number> {
  let pages = 0;
  while ((await store.getPage(queryId, pages)) !== undefined) pages++;
  return pages;
}

/** Deletes every key under `<prefix>:` with SCAN and DEL. */
export async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/**
 * One s3rver per test file (module state is per file): started by the first installation that needs it,
 * stopped when the last one releases it. Each installation keeps its pages under a prefix of its own.
 */
let shared: { server: Promise<S3rver>; users: number } | undefined;

async function acquireS3rver(): Promise<{ server: S3rver; release: () => Promise<void> }> {
  const entry = (shared ??= { server: startS3rver(), users: 0 });
  entry.users++;
  let server: S3rver;
  try {
    server = await entry.server;
  } catch (err) {
    entry.users--;
    if (shared === entry) shared = undefined;
    throw err;
  }
  // An in-process qrun's S3 client takes its credentials from the SDK's default chain, that is from
  // this process's environment; s3rver only knows its own key pair.
  process.env.AWS_ACCESS_KEY_ID = server.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = server.secretAccessKey;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  let released = false;
  return {
    server,
    release: async () => {
      if (released) return;
      released = true;
      if (--entry.users > 0) return;
      if (shared === entry) shared = undefined;
      await server.close();
    },
  };
}

/** Runs every step even when one fails, then throws the first failure. */
async function runAll(steps: (() => Promise<void>)[]): Promise<void> {
  let first: unknown;
  for (const step of steps) {
    try {
      await step();
    } catch (err) {
      first ??= err;
    }
  }
  if (first !== undefined) throw first;
}
