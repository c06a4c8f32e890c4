import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import { withStatementCache } from './sqlite-statements.js';
import type pg from 'pg';
import { migrationProvider } from './migrations/index.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;

export interface MetadataStore {
  db: Db;
  dialect: 'sqlite' | 'postgres';
  close(): Promise<void>;
}

export interface MetadataStoreOptions {
  /** Connections in the PostgreSQL pool (SQLite has exactly one). Default 10. */
  poolSize?: number;
  /**
   * Told about errors of idle pooled PostgreSQL connections (server restart, terminated backend). The pool
   * drops such a connection and opens a new one on demand; without a listener pg would crash the process.
   */
  onPoolError?: (err: Error) => void;
}

const DEFAULT_POOL_SIZE = 10;

/**
 * pg, loaded when a PostgreSQL store is opened: the embedded default (SQLite) never needs it, and the
 * PostgreSQL connector loads it at its first query (docs/ARCHITECTURE.md). pg is CommonJS, so require()
 * gives the same module instance as an import.
 */
let pgModule: typeof pg | undefined;
const loadPg = (): typeof pg => (pgModule ??= createRequire(import.meta.url)('pg') as typeof pg);
const PG_INT8 = 20;

/**
 * pg hands int8 (bigint columns, count(*)) over as strings; SQLite gives numbers. The store's counts
 * and row counts stay far below 2^53, so numbers on both keep the repositories dialect-free. Set per pool:
 * the PostgreSQL connector relies on pg's defaults being left alone.
 */
const metadataTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === PG_INT8 && format !== 'binary'
      ? (value: string) => Number(value)
      : loadPg().types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/** Opens the metadata store named by QRUN_DATABASE_URL: `sqlite:<path>` or `postgres(ql)://…`. */
export function openMetadataStore(databaseUrl: string, options: MetadataStoreOptions = {}): MetadataStore {
  if (databaseUrl.startsWith('sqlite:')) return openSqlite(databaseUrl.slice('sqlite:'.length));
  if (/^postgres(ql)?:\/\//.test(databaseUrl)) return openPostgres(databaseUrl, options);
  throw new Error(`Unsupported metadata store URL: ${databaseUrl.split(':')[0]}:`);
}

function openSqlite(file: string): MetadataStore {
  if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
  const sqlite = new SqliteDatabase(file);
  // WAL lets the HTTP side read while a worker writes; the busy timeout rides out short write locks.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('synchronous = NORMAL');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  return { db, dialect: 'sqlite', close: () => db.destroy() };
}

function openPostgres(connectionString: string, options: MetadataStoreOptions): MetadataStore {
  const pool = new (loadPg().Pool)({
    connectionString,
    max: options.poolSize ?? DEFAULT_POOL_SIZE,
    // Names the connections in pg_stat_activity; an application_name in the URL wins.
    application_name: 'qrun-metadata',
    types: metadataTypes,
    // An unreachable server fails start-up with a message instead of hanging it.
    connectionTimeoutMillis: 30_000,
    keepAlive: true,
  });
  pool.on('error', (err) => options.onPoolError?.(err));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, dialect: 'postgres', close: () => db.destroy() };
}

/** A unique or primary key violation, on either dialect: the loser of a race to insert the same row. */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/**
 * Brings the schema up to date. Safe when several processes start at once on one PostgreSQL database:
 * Kysely's PostgreSQL adapter holds a session-level pg_advisory_lock around the migration transaction, so
 * the others wait and then find nothing left to do (test/integration/metadata-store.test.ts checks this).
 */
export async function migrateToLatest(db: Db): Promise<void> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    const name = failed?.migrationName ?? 'unknown';
    throw new Error(`Migration ${name} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}
