/**
 * The suite's deployment switch itself (test/helpers/deployment.ts): test servers run on the parts the
 * pass selects, and closing them leaves nothing behind in the services other runs share.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { FsResultStore } from '../../src/results/fs-result-store.js';
import { S3ResultStore } from '../../src/results/s3-result-store.js';
import { onScaleOut, TEST_REDIS_URL, testDeployment } from '../helpers/deployment.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

async function redisKeys(prefix: string): Promise<string[]> {
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    return keys;
  } finally {
    redis.disconnect();
  }
}

async function databaseExists(name: string): Promise<boolean> {
  const client = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    return (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  } finally {
    await client.end();
  }
}

async function selectOne(s: TestServer): Promise<string> {
  const auth = { bearer: s.adminKey };
  const c = await s.request('POST', '/api/connections', {
    auth,
    body: {
      name: 'pg',
      type: 'postgresql',
      configuration: { hostname: '127.0.0.1', port: 5432, database: 'test', username: 'postgres' },
    },
  });
  expect(c.status, c.text).toBe(200);
  const q = await s.request('POST', `/api/connections/${c.body.data.id}/query`, {
    auth,
    body: { query: 'select 1 as one' },
  });
  const done = await s.request('GET', `/api/queries/${q.body.data.id}?wait=30`, { auth });
  expect(done.body.data).toMatchObject({ status: 'done', results: [{ one: 1 }] });
  return q.body.data.id;
}

describe(`test servers on the ${testDeployment} deployment`, () => {
  it('run on the metadata store, dispatch and result store the switch selects', async () => {
    const a = await startTestServer();
    const b = await startTestServer();
    try {
      for (const s of [a, b]) {
        expect(s.qrun.store.dialect).toBe(onScaleOut ? 'postgres' : 'sqlite');
        expect(s.qrun.results).toBeInstanceOf(onScaleOut ? S3ResultStore : FsResultStore);
        expect(s.qrun.config.redisUrl).toBe(onScaleOut ? TEST_REDIS_URL : undefined);
        expect(s.qrun.config.secretKey !== undefined).toBe(onScaleOut);
        expect(await s.pagesExist(await selectOne(s))).toBe(true);
      }
      if (onScaleOut) {
        // Two installations: two databases and Redis prefixes, one s3rver with a key prefix each.
        expect(a.qrun.config.databaseUrl).not.toBe(b.qrun.config.databaseUrl);
        expect(a.qrun.config.redisPrefix).not.toBe(b.qrun.config.redisPrefix);
        expect(a.qrun.config.s3Endpoint).toBe(b.qrun.config.s3Endpoint);
        expect(a.qrun.config.resultsUrl).not.toBe(b.qrun.config.resultsUrl);
        expect(await redisKeys(a.qrun.config.redisPrefix)).not.toEqual([]);
      }
    } finally {
      await a.close();
      await b.close();
    }
    if (onScaleOut) {
      for (const s of [a, b]) {
        expect(await redisKeys(s.qrun.config.redisPrefix)).toEqual([]);
        expect(await databaseExists(new URL(s.qrun.config.databaseUrl).pathname.slice(1))).toBe(false);
      }
      // The last server to close stopped the file's s3rver.
      await expect(fetch(a.qrun.config.s3Endpoint!)).rejects.toThrow();
    }
  });
});
