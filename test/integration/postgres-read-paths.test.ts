/**
 * PostgreSQL reads rows two ways (src/connectors/postgres/postgres-stream.ts): a query without parameters
 * that starts like one COPY takes runs as `COPY (…) TO STDOUT`; everything else through a pg-cursor. Both
 * must give exactly the same values, errors and positions. The shared connector suite runs every value
 * case on the path chosen for it (COPY); this file runs them on both, and checks on the server which path
 * a statement really took.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DatabaseError,
  JsonText,
  type CellValue,
  type ColumnInfo,
  type ConnectorContext,
  type ParameterValue,
} from '../../src/connectors/connector.js';
import type { PgConfig } from '../../src/connectors/postgres/postgres-connector.js';
import { postgresConnector } from '../../src/connectors/postgres/postgres-connector.js';
import {
  COPY_MIN_BATCH_ROWS,
  streamPostgres,
  type PgReadPath,
} from '../../src/connectors/postgres/postgres-stream.js';
import { comparable } from '../helpers/engine-fixture.js';
import { postgresFixture } from '../helpers/postgres-fixture.js';
import { waitUntil } from '../helpers/wait.js';

let config: PgConfig;
let context: ConnectorContext;

beforeAll(async () => {
  const made = await postgresFixture.setup();
  context = made.context;
  config = postgresConnector.validateConfig(postgresConnector.parseConfig(made.config), context) as PgConfig;
});
afterAll(() => postgresFixture.teardown());

async function run(
  sql: string,
  path: PgReadPath = 'auto',
  parameters: ParameterValue[] = [],
  signal = new AbortController().signal,
): Promise<{ columns: ColumnInfo[]; rows: CellValue[][]; batches: number }> {
  const stream = await streamPostgres(config, sql, parameters, { signal, batchSize: 1000 }, context, path);
  const rows: CellValue[][] = [];
  let batches = 0;
  for await (const batch of stream.rows) {
    rows.push(...batch);
    batches++;
  }
  return { columns: stream.columns, rows, batches };
}

async function failure(sql: string, path: PgReadPath): Promise<DatabaseError> {
  const err = await run(sql, path).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, sql).toBeInstanceOf(DatabaseError);
  return err as DatabaseError;
}

/** The text of statements running on the server for `forAtLeast` that contain `marker` (not this lookup). */
async function runningText(marker: string, forAtLeast = '0 s'): Promise<string[]> {
  const client = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    const r = await client.query<{ query: string }>(
      "SELECT query FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%' || $1 || '%'" +
        ' AND pid <> pg_backend_pid() AND now() - query_start >= $2::interval',
      [marker, forAtLeast],
    );
    return r.rows.map((row) => row.query);
  } finally {
    await client.end();
  }
}

/**
 * Starts `sql` (which must contain `marker` and run for seconds), returns the text the server shows for it
 * once it has run for half a second, and stops it.
 */
async function serverTextOf(sql: string, marker: string, parameters: ParameterValue[] = []): Promise<string> {
  const controller = new AbortController();
  const running = run(sql, 'auto', parameters, controller.signal).catch(() => undefined);
  let seen: string[] = [];
  // Half a second in: past the Describe, which shows the statement's own text while it runs.
  await waitUntil(`${marker} running`, async () => (seen = await runningText(marker, '0.5 s')).length > 0);
  controller.abort();
  await running;
  return seen[0]!;
}

describe('PostgreSQL read paths', () => {
  describe('every value case gives the same values on both paths', () => {
    for (const valueCase of postgresFixture.valueCases) {
      it(valueCase.name, async () => {
        for (const path of ['copy', 'cursor'] as const) {
          const { columns, rows } = await run(valueCase.sql, path);
          expect(rows, path).toHaveLength(1);
          expect(comparable(rows[0] ?? []), path).toEqual(comparable(valueCase.expected));
          if (valueCase.types) expect(columns.map((c) => c.type)).toEqual(valueCase.types);
        }
      });
    }
  });

  it('runs a query as COPY on the server, and parameters, DML, SHOW and the user’s own COPY on the cursor', async () => {
    const marker = `m${randomBytes(4).toString('hex')}`;
    expect(await serverTextOf(`SELECT pg_sleep(30), '${marker}' AS m`, marker)).toMatch(/^COPY \(SELECT/);
    // A trailing comment (a marker, a sqlcommenter tag) stays in what the server shows.
    expect(await serverTextOf(`SELECT pg_sleep(30) /* ${marker} */`, marker)).toBe(
      `COPY (SELECT pg_sleep(30) /* ${marker} */\n) TO STDOUT`,
    );
    expect(
      await serverTextOf(`WITH w AS (SELECT '${marker}' AS m) SELECT pg_sleep(30), m FROM w`, marker),
    ).toMatch(/^COPY \(WITH/);
    expect(await serverTextOf(`SELECT pg_sleep(30), $1::text AS m -- ${marker}`, marker, ['p'])).toMatch(
      /^SELECT/,
    );

    // These never wait on the server long enough to be seen: their results show the path instead.
    expect((await run('SHOW TimeZone')).rows).toEqual([['UTC']]);
    const own = await failure('COPY (SELECT 1) TO STDOUT', 'auto');
    expect(own.message).toContain('COPY … TO STDOUT is not supported');
  });

  it('keeps small pages on the cursor (COPY flushes 8 KB at a time), and reads pages of 1,000 as COPY', async () => {
    const marker = `m${randomBytes(4).toString('hex')}`;
    const sql = `SELECT pg_sleep(30), '${marker}' AS m`;
    const textOf = async (batchSize: number) => {
      const controller = new AbortController();
      const stream = streamPostgres(config, sql, [], { signal: controller.signal, batchSize }, context);
      const running = stream.then((s) => s.rows[Symbol.asyncIterator]().next()).catch(() => undefined);
      let seen: string[] = [];
      await waitUntil(
        `${marker} running`,
        async () => (seen = await runningText(marker, '0.5 s')).length > 0,
      );
      controller.abort();
      await running;
      return seen[0]!;
    };
    expect(COPY_MIN_BATCH_ROWS).toBe(1000);
    expect(await textOf(999)).toMatch(/^SELECT/);
    expect(await textOf(1000)).toMatch(/^COPY \(SELECT/);
  });

  it('ends a statement with or without a final semicolon and comments, in many batches', async () => {
    for (const sql of [
      'SELECT n FROM generate_series(1, 2500) n',
      'SELECT n FROM generate_series(1, 2500) n;',
      'SELECT n FROM generate_series(1, 2500) n ; ; -- done',
      "SELECT n FROM generate_series(1, 2500) n /* ; */ -- ';'\n;\n/* after */",
      '(SELECT n FROM generate_series(1, 2500) n)',
      'SELECT n FROM generate_series(1, 2500) n -- a trailing comment',
      "SELECT n FROM generate_series(1, 2500) n WHERE $$;)$$ <> E'\\';' AND ';' <> \"n\"::text",
    ]) {
      const { rows, batches } = await run(sql);
      expect(
        rows.map((r) => Number(r[0] instanceof JsonText ? r[0].text : r[0])),
        sql,
      ).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
      expect(batches, sql).toBe(3);
    }
  });

  it('reports an error with the same message, SQLSTATE and position (in the user’s text) on both paths', async () => {
    const sql = "SELECT 1 AS a,\n  'x'::int AS b";
    const copy = await failure(sql, 'copy');
    const cursor = await failure(sql, 'cursor');
    expect(copy.message).toBe(cursor.message);
    expect(copy.sqlstate).toBe('22P02');
    expect(copy.position).toBe(cursor.position);
    expect(sql.slice(copy.position! - 1)).toMatch(/^'x'/);
  });

  it('fails in the middle of the rows the same way on both paths', async () => {
    const sql =
      'SELECT CASE WHEN n = 40000 THEN 1 / (n - n) ELSE n END AS v FROM generate_series(1, 50000) n';
    const copy = await failure(sql, 'copy');
    const cursor = await failure(sql, 'cursor');
    expect(copy.message).toBe('division by zero');
    expect(copy.code).toBe(cursor.code);
  });

  it('runs a data-modifying WITH once, and SELECT INTO on the cursor', async () => {
    const table = `t_${randomBytes(4).toString('hex')}`;
    await run(`CREATE TABLE ${table} (a int)`);
    const { rows } = await run(
      `WITH i AS (INSERT INTO ${table} VALUES (1), (2) RETURNING a) SELECT a FROM i`,
    );
    expect(rows).toEqual([[1], [2]]);
    expect((await run(`SELECT count(*)::int AS n FROM ${table}`)).rows).toEqual([[2]]);
    const into = await run(`SELECT a INTO ${table}_copy FROM ${table}`);
    expect(into.columns).toEqual([]);
    expect((await run(`SELECT count(*)::int AS n FROM ${table}_copy`)).rows).toEqual([[2]]);
  });

  it('ends a COPY on the server when the reader stops early (max_rows) or aborts', async () => {
    for (const stop of ['return', 'abort'] as const) {
      const marker = `m${randomBytes(4).toString('hex')}`;
      const controller = new AbortController();
      const stream = await streamPostgres(
        config,
        `SELECT n, '${marker}' AS m FROM generate_series(1, 3000000) n`,
        [],
        { signal: controller.signal, batchSize: 1000 },
        context,
      );
      const rows = stream.rows[Symbol.asyncIterator]();
      expect((await rows.next()).value).toHaveLength(1000);
      expect((await runningText(marker))[0]).toMatch(/^COPY \(SELECT/);
      if (stop === 'return') await rows.return?.();
      else {
        controller.abort();
        await expect(rows.next()).rejects.toThrow();
      }
      await waitUntil(
        `${marker} ended on the server (${stop})`,
        async () => (await runningText(marker)).length === 0,
      );
    }
  });

  it('gives rows without columns as empty rows', async () => {
    const { columns, rows } = await run('SELECT FROM generate_series(1, 3)');
    expect(columns).toEqual([]);
    expect(rows).toEqual([[], [], []]);
  });
});
