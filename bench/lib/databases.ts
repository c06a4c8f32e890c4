import mysql from 'mysql2/promise';
import pg from 'pg';
import { log, timed } from './util.js';

/**
 * The benchmark's own databases: one table `bench_rows` (int8, text from md5, numeric(20,6),
 * timestamptz) of the requested size on PostgreSQL and the same shape on MariaDB. A table that
 * already holds exactly the requested rows is reused (--keep-db makes that possible across runs).
 */

export const PG = { host: '127.0.0.1', port: 5432, user: 'postgres' } as const;
export const MARIADB = { host: '127.0.0.1', port: 3306, user: 'root' } as const;

export type Engine = 'postgresql' | 'mysql';

/** The SELECT every contender runs in scenarios 1-4: the whole table, in storage order. */
export const TABLE_QUERY = 'SELECT id, hash, amount, at FROM bench_rows';

/** Scenario 6: the same shape of rows, generated on the fly (no 5,000,000-row table to fill). */
export function generatedQuery(engine: Engine, rows: number): string {
  return engine === 'postgresql'
    ? `SELECT n::int8 AS id, md5(n::text) AS hash, (n * 1.000001)::numeric(20,6) AS amount,
         timestamptz '2024-01-01 00:00:00+00' + n * interval '1 second' AS at
       FROM generate_series(1, ${rows}) AS n`
    : `SELECT seq AS id, MD5(seq) AS hash, CAST(seq * 1.000001 AS DECIMAL(20,6)) AS amount,
         TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND AS at
       FROM seq_1_to_${rows}`;
}

/** The configuration qrun's POST /api/connections takes for the benchmark database. */
export function qrunConnection(engine: Engine, database: string): Record<string, unknown> {
  return engine === 'postgresql'
    ? { hostname: PG.host, port: PG.port, database, username: PG.user }
    : { hostname: MARIADB.host, port: MARIADB.port, dbname: database, account: MARIADB.user };
}

async function withPg<T>(database: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ ...PG, database });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function withMariadb<T>(
  database: string | undefined,
  work: (connection: mysql.Connection) => Promise<T>,
): Promise<T> {
  const connection = await mysql.createConnection({ ...MARIADB, database });
  try {
    return await work(connection);
  } finally {
    await connection.end();
  }
}

/** Creates the database, and with `rows` the filled table. */
export async function preparePostgres(database: string, rows?: number): Promise<void> {
  await withPg('postgres', async (c) => {
    const found = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) await c.query(`CREATE DATABASE ${database}`);
  });
  if (rows === undefined) return;
  await withPg(database, async (c) => {
    await c.query(`CREATE TABLE IF NOT EXISTS bench_rows (
      id int8 NOT NULL, hash text NOT NULL, amount numeric(20,6) NOT NULL, at timestamptz NOT NULL)`);
    const { rows: counts } = await c.query<{ n: string; top: string | null }>(
      'SELECT count(*) AS n, max(id) AS top FROM bench_rows',
    );
    if (Number(counts[0]?.n) === rows && Number(counts[0]?.top) === rows) {
      log(`PostgreSQL ${database}.bench_rows already holds ${rows} rows`);
      return;
    }
    const { seconds } = await timed(async () => {
      await c.query('TRUNCATE bench_rows');
      await c.query(
        `INSERT INTO bench_rows
         SELECT n, md5(n::text), (n * 1.000001)::numeric(20,6),
                timestamptz '2024-01-01 00:00:00+00' + n * interval '1 second'
         FROM generate_series(1, $1::int8) AS n`,
        [rows],
      );
      // Sets hint bits and the visibility map now, so the first timed scan does not write pages.
      await c.query('VACUUM (FREEZE, ANALYZE) bench_rows');
    });
    log(`PostgreSQL ${database}.bench_rows filled with ${rows} rows in ${seconds.toFixed(1)} s`);
  });
}

/** Creates the database, and with `rows` the filled table. */
export async function prepareMariadb(database: string, rows?: number): Promise<void> {
  await withMariadb(undefined, async (c) => {
    await c.query(`CREATE DATABASE IF NOT EXISTS ${database}`);
  });
  if (rows === undefined) return;
  await withMariadb(database, async (c) => {
    await c.query(`CREATE TABLE IF NOT EXISTS bench_rows (
      id BIGINT NOT NULL PRIMARY KEY, hash VARCHAR(32) NOT NULL, amount DECIMAL(20,6) NOT NULL,
      at TIMESTAMP NOT NULL) ENGINE=InnoDB`);
    const [counts] = await c.query<mysql.RowDataPacket[]>(
      'SELECT count(*) AS n, max(id) AS top FROM bench_rows',
    );
    if (Number(counts[0]?.n) === rows && Number(counts[0]?.top) === rows) {
      log(`MariaDB ${database}.bench_rows already holds ${rows} rows`);
      return;
    }
    const { seconds } = await timed(async () => {
      await c.query('TRUNCATE TABLE bench_rows');
      await c.query("SET time_zone = '+00:00'");
      // seq_1_to_N is MariaDB's Sequence engine; recursive CTEs stop at 1001 rows by default.
      await c.query(
        `INSERT INTO bench_rows
         SELECT seq, MD5(seq), CAST(seq * 1.000001 AS DECIMAL(20,6)),
                TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND
         FROM seq_1_to_${rows}`,
      );
      await c.query('ANALYZE TABLE bench_rows');
    });
    log(`MariaDB ${database}.bench_rows filled with ${rows} rows in ${seconds.toFixed(1)} s`);
  });
}

/** Reads the table once so that every timed run finds it in the caches. */
export async function warmTables(database: string, engines: Engine[]): Promise<void> {
  if (engines.includes('postgresql')) {
    await withPg(database, (c) => c.query('SELECT sum(length(hash)) FROM bench_rows'));
  }
  if (engines.includes('mysql')) {
    await withMariadb(database, (c) => c.query('SELECT sum(length(hash)) FROM bench_rows'));
  }
}

export async function dropDatabases(database: string, engines: Engine[]): Promise<void> {
  if (engines.includes('postgresql')) {
    // FORCE ends connections a peer may still hold in its pool.
    await withPg('postgres', (c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
  }
  if (engines.includes('mysql')) {
    await withMariadb(undefined, (c) => c.query(`DROP DATABASE IF EXISTS ${database}`));
  }
}
