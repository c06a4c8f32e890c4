import mysql from 'mysql2';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { MARIADB, PG } from './databases.js';
import { runCommand } from './util.js';

/**
 * The raw contenders: each reads every row of `sql` and drops it. Each opens its own connection
 * and closes it, as qrun does for every query, so connection set-up is on both sides of a ratio.
 */

/** pg + pg-cursor, rowMode 'array', batches of 10,000, default type parsers. Returns the row count. */
export async function pgCursorRead(database: string, sql: string, batch = 10_000): Promise<number> {
  const client = new pg.Client({ ...PG, database });
  await client.connect();
  try {
    const cursor = client.query(new Cursor(sql, [], { rowMode: 'array' }));
    let count = 0;
    for (;;) {
      const rows = await cursor.read(batch);
      count += rows.length;
      if (rows.length < batch) break;
    }
    await cursor.close();
    return count;
  } finally {
    await client.end();
  }
}

/** psql's \copy of the result to /dev/null (the server formats text rows, psql writes them out). */
export async function psqlCopy(database: string, sql: string): Promise<void> {
  const oneLine = sql.replace(/\s+/g, ' ');
  await runCommand('psql', [
    '-X',
    '-q',
    '-v',
    'ON_ERROR_STOP=1',
    '-h',
    PG.host,
    '-p',
    String(PG.port),
    '-U',
    PG.user,
    '-d',
    database,
    '-c',
    `\\copy (${oneLine}) to '/dev/null'`,
  ]);
}

/** mysql2 row streaming (the `result` event per row), rowsAsArray, default type casting. */
export async function mysql2Stream(database: string, sql: string): Promise<number> {
  const connection = mysql.createConnection({ ...MARIADB, database });
  try {
    return await new Promise<number>((resolve, reject) => {
      let count = 0;
      connection
        .query({ sql, rowsAsArray: true })
        .on('result', () => {
          count++;
        })
        .on('error', reject)
        .on('end', () => resolve(count));
    });
  } finally {
    await new Promise<void>((resolve) => connection.end(() => resolve()));
  }
}

/** The mariadb command-line client: --quick (row by row, no buffering), batch, no column names. */
export async function mariadbClient(database: string, sql: string): Promise<void> {
  // stdout is /dev/null (spawn's 'ignore').
  await runCommand('mariadb', [
    '--quick',
    '-B',
    '-N',
    '-h',
    MARIADB.host,
    '-P',
    String(MARIADB.port),
    '-u',
    MARIADB.user,
    '-e',
    sql,
    database,
  ]);
}

/** A fresh pg connection, `SELECT 1`, and close: what qrun does against the database per query. */
export async function pgSelectOne(database: string): Promise<void> {
  const client = new pg.Client({ ...PG, database });
  await client.connect();
  try {
    await client.query('SELECT 1');
  } finally {
    await client.end();
  }
}
