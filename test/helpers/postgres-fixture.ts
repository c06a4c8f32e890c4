import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { JsonText } from '../../src/connectors/connector.js';
import { postgresConnector } from '../../src/connectors/postgres/postgres-connector.js';
import { EgressPolicy } from '../../src/net/egress-policy.js';
import type { EngineFixture, ValueCase } from './engine-fixture.js';

/** The machine's PostgreSQL: trust authentication for `postgres` on 127.0.0.1. */
const SERVER = { host: '127.0.0.1', port: 5432, user: 'postgres' };

const suffix = randomBytes(4).toString('hex');
const database = `qrun_conn_${suffix}`;

async function withClient<T>(db: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ ...SERVER, database: db });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const valueCases: ValueCase[] = [
  { name: 'null', sql: 'SELECT NULL::int4 AS v', expected: [null], types: ['int4'] },
  { name: 'booleans', sql: 'SELECT true AS t, false AS f', expected: [true, false], types: ['bool', 'bool'] },
  {
    name: 'integers: int2/int4 as numbers, int8 as exact bigints',
    sql: 'SELECT (-32768)::int2 AS a, (-2147483648)::int4 AS b, 9223372036854775807::int8 AS c, 9007199254740993::int8 AS d, 7::oid AS e',
    expected: [-32768, -2147483648, 9223372036854775807n, 9007199254740993n, 7],
    types: ['int2', 'int4', 'int8', 'int8', 'oid'],
  },
  {
    name: 'floats are numbers, NaN and infinities included',
    sql: "SELECT 1.5::float8 AS a, 0.1::float4 AS b, 'NaN'::float8 AS c, 'Infinity'::float8 AS d, '-Infinity'::float4 AS e, 1e300::float8 AS f, 0.1::float8 + 0.2::float8 AS g",
    expected: [1.5, 0.1, NaN, Infinity, -Infinity, 1e300, 0.30000000000000004],
    types: ['float8', 'float4', 'float8', 'float8', 'float4', 'float8', 'float8'],
  },
  {
    name: 'numeric is the exact decimal text',
    sql: "SELECT 12345678901234567890.000001::numeric AS a, 'NaN'::numeric AS b, 0.10::numeric(5,2) AS c, -1e-20::numeric AS d",
    expected: ['12345678901234567890.000001', 'NaN', '0.10', '-0.00000000000000000001'],
    types: ['numeric', 'numeric', 'numeric', 'numeric'],
  },
  {
    name: 'text, varchar, char, uuid and enums are strings',
    sql: "SELECT 'it''s'::text AS a, 'x'::varchar(5) AS b, 'ab'::char(3) AS c, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS d, 'happy'::qrun_mood AS e, 'pg'::name AS f",
    expected: ["it's", 'x', 'ab ', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy', 'pg'],
    types: ['text', 'varchar', 'bpchar', 'uuid', 'qrun_mood', 'name'],
  },
  {
    // COPY's text format escapes these (postgres-copy.ts): each must come back as the database has it.
    name: 'text with tabs, newlines, backslashes, a literal \\N and non-ASCII is exact',
    sql: "SELECT E'a\\tb\\nc\\rd\\\\e\\bf\\fg\\x0bh' AS a, E'\\\\N' AS b, 'N' AS c, '' AS d, 'é€😀 中文' AS e, E'\\\\' AS f",
    expected: ['a\tb\nc\rd\\e\bf\fg\vh', '\\N', 'N', '', 'é€😀 中文', '\\'],
    types: ['text', 'text', 'text', 'text', 'text', 'text'],
  },
  {
    name: 'dates keep their text; infinity and BC stay as the database wrote them',
    sql: "SELECT '2026-01-02'::date AS a, 'infinity'::date AS b, '0044-03-15 BC'::date AS c",
    expected: ['2026-01-02', 'infinity', '0044-03-15 BC'],
    types: ['date', 'date', 'date'],
  },
  {
    name: 'timestamps without time zone use T',
    sql: "SELECT '2026-01-02 03:04:05'::timestamp AS a, '2026-01-02 03:04:05.123456'::timestamp AS b, '-infinity'::timestamp AS c",
    expected: ['2026-01-02T03:04:05', '2026-01-02T03:04:05.123456', '-infinity'],
    types: ['timestamp', 'timestamp', 'timestamp'],
  },
  {
    name: 'timestamps with time zone are RFC 3339 UTC',
    sql: `SELECT '2026-01-01 12:00:00.123+02'::timestamptz AS a, '2026-06-30 23:59:59-05:30'::timestamptz AS b,
      '2026-01-01 00:00:00.000001+00'::timestamptz AS c, '12345-01-01 00:00:00+00'::timestamptz AS d,
      'infinity'::timestamptz AS e, '0044-03-15 12:00:00+00 BC'::timestamptz AS f`,
    expected: [
      '2026-01-01T10:00:00.123Z',
      '2026-07-01T05:29:59Z',
      '2026-01-01T00:00:00.000001Z',
      '12345-01-01T00:00:00Z',
      'infinity',
      '0044-03-15 12:00:00+00 BC',
    ],
    types: ['timestamptz', 'timestamptz', 'timestamptz', 'timestamptz', 'timestamptz', 'timestamptz'],
  },
  {
    name: 'time, timetz and interval are the canonical text',
    sql: "SELECT '13:45:00.5'::time AS a, '13:45:00+02'::timetz AS b, '1 day 02:03:04'::interval AS c, '14 months'::interval AS d",
    expected: ['13:45:00.5', '13:45:00+02', '1 day 02:03:04', '1 year 2 mons'],
    types: ['time', 'timetz', 'interval', 'interval'],
  },
  {
    name: 'json and jsonb are the JSON text itself',
    sql: `SELECT '{"a": [1, 2.50, 12345678901234567890]}'::json AS a, '{"b": 1, "a": [true, null]}'::jsonb AS b`,
    expected: [
      new JsonText('{"a": [1, 2.50, 12345678901234567890]}'),
      new JsonText('{"a": [true, null], "b": 1}'),
    ],
    types: ['json', 'jsonb'],
  },
  {
    name: 'bytea is bytes',
    sql: "SELECT '\\x00ff10'::bytea AS a, ''::bytea AS b",
    expected: [new Uint8Array([0, 255, 16]), new Uint8Array([])],
    types: ['bytea', 'bytea'],
  },
  {
    name: 'arrays map their elements, nested and with NULLs',
    sql: `SELECT ARRAY[1, 2, NULL]::int4[] AS a, ARRAY[9007199254740993]::int8[] AS b,
      ARRAY['a,b', 'q"x', NULL, 'NULL', 'back\\slash']::text[] AS c, ARRAY[[1.5, 2], [3, 4]]::numeric[] AS d,
      ARRAY[true, false] AS e, ARRAY['2026-01-01 12:00:00+02'::timestamptz] AS f, ARRAY['{"k": 1}'::jsonb] AS g,
      ARRAY['sad'::qrun_mood] AS h, '{}'::int4[] AS i, ARRAY['NaN'::float8, 2.5] AS j, ARRAY['\\x01'::bytea] AS k,
      '[0:1]={7,8}'::int4[] AS l`,
    expected: [
      [1, 2, null],
      [9007199254740993n],
      ['a,b', 'q"x', null, 'NULL', 'back\\slash'],
      [
        ['1.5', '2'],
        ['3', '4'],
      ],
      [true, false],
      ['2026-01-01T10:00:00Z'],
      [new JsonText('{"k": 1}')],
      ['sad'],
      [],
      [NaN, 2.5],
      [new Uint8Array([1])],
      [7, 8],
    ],
    types: [
      '_int4',
      '_int8',
      '_text',
      '_numeric',
      '_bool',
      '_timestamptz',
      '_jsonb',
      '_qrun_mood',
      '_int4',
      '_float8',
      '_bytea',
      '_int4',
    ],
  },
  {
    name: 'domains behave as their base type',
    sql: 'SELECT 42::qrun_positive AS a, ARRAY[5::qrun_positive] AS b',
    expected: [42, [5]],
  },
];

export const postgresFixture: EngineFixture = {
  type: 'postgresql',
  connector: postgresConnector,
  async setup() {
    await withClient('postgres', (c) => c.query(`CREATE DATABASE ${database}`));
    await withClient(database, (c) =>
      c.query(
        "CREATE TYPE qrun_mood AS ENUM ('happy', 'sad'); CREATE DOMAIN qrun_positive AS int4 CHECK (VALUE > 0)",
      ),
    );
    return {
      config: { hostname: SERVER.host, port: SERVER.port, database, username: SERVER.user, ssl: false },
      context: { fileDir: '/nonexistent', egress: new EgressPolicy() },
    };
  },
  async teardown() {
    await withClient('postgres', (c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
  },
  badCredentials() {
    // Trust authentication ignores passwords, so the login fails on a database that does not exist,
    // named like the password: the server's message then carries the secret unless it is scrubbed.
    const secret = `qrun_pw_${suffix}_secret`;
    return {
      config: {
        hostname: SERVER.host,
        port: SERVER.port,
        database: secret,
        username: SERVER.user,
        password: secret,
        ssl: false,
      },
      secret,
    };
  },
  sql: {
    series: (n) => `SELECT n FROM generate_series(1, ${n}) AS n`,
    slow: (seconds) => `SELECT pg_sleep(${seconds}) AS slept`,
    twoParameters: 'SELECT $1::text AS a, $2::text AS b',
  },
  valueCases,
  async runningStatements(marker) {
    return withClient('postgres', async (c) => {
      const r = await c.query<{ n: string }>(
        "SELECT count(*)::text AS n FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND strpos(query, $1) > 0",
        [marker],
      );
      return Number(r.rows[0]?.n ?? 0);
    });
  },
};
