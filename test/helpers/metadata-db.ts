import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';

/** The machine's PostgreSQL: trust authentication for `postgres` on 127.0.0.1. */
const SERVER = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' };

/** True when the suite runs with the metadata store on PostgreSQL (`npm run test:postgres`). */
export const metadataOnPostgres = process.env.QRUN_TEST_METADATA === 'postgres';

export interface MetadataDatabase {
  url: string;
  /** Drops what this helper created; safe to call twice. */
  cleanup(): Promise<void>;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(SERVER);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A fresh, empty PostgreSQL database `qrun_meta_<random>`, dropped by cleanup(). */
export async function createPostgresMetadataDatabase(): Promise<MetadataDatabase> {
  const name = `qrun_meta_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  let dropped = false;
  return {
    url: `postgres://${SERVER.user}@${SERVER.host}:${SERVER.port}/${name}`,
    async cleanup() {
      if (dropped) return;
      dropped = true;
      // FORCE ends backends a test left behind (a killed child process, an unclosed pool).
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/**
 * The metadata store URL for a test: a new PostgreSQL database when QRUN_TEST_METADATA=postgres,
 * otherwise the SQLite file inside `dataDir` (which the caller removes with the directory).
 */
export async function metadataDatabaseUrl(dataDir: string): Promise<MetadataDatabase> {
  if (metadataOnPostgres) return createPostgresMetadataDatabase();
  return { url: `sqlite:${path.join(dataDir, 'qrun.sqlite')}`, cleanup: async () => {} };
}
