import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The machine's PostgreSQL: trust authentication for `postgres` on 127.0.0.1. */
const SERVER = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' };

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
