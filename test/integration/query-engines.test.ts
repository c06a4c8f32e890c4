/**
 * Every engine end to end through real HTTP (POST query → GET ?wait → links.next), against a server
 * started with QRUN_PAGE_ROWS=1000: a 25,000-row result compared row by row with what the raw driver
 * reads, the value table checked on the response text itself, statements without rows, failures,
 * parameters, cancel, timeout and max_rows.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineFixture } from '../helpers/engine-fixture.js';
import { engineFixtures } from '../helpers/engines.js';
import { startTestServer, type Response, type TestServer } from '../helpers/server.js';
import { waitForQueryEnd, waitUntil } from '../helpers/wait.js';

const BIG_ROWS = 25_000;
const PAGE_ROWS = 1000;

// ---- exact JSON ----

/** A JSON number kept as the digits the server wrote: JSON.parse would round anything past 2^53. */
class Num {
  constructor(readonly text: string) {}
}
type Exact = null | boolean | string | Num | Exact[] | { [key: string]: Exact };

const num = (value: number | bigint | string): Num => new Num(String(value));

/** JSON.parse, except that numbers stay text (as Num). */
function parseExact(text: string): Exact {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at ${i}: ${text.slice(i, i + 40)}`);
  };
  const space = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const token = (re: RegExp): string => {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) return fail('unexpected input');
    i = re.lastIndex;
    return m[0];
  };
  const STRING = /"(?:[^"\\]|\\.)*"/y;
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const value = (): Exact => {
    space();
    const c = text[i];
    if (c === '"') return JSON.parse(token(STRING)) as string;
    if (c === '{') {
      i++;
      const object: Record<string, Exact> = {};
      space();
      if (text[i] === '}') return (i++, object);
      for (;;) {
        space();
        const key = JSON.parse(token(STRING)) as string;
        space();
        if (text[i++] !== ':') fail('expected :');
        object[key] = value();
        space();
        const next = text[i++];
        if (next === '}') return object;
        if (next !== ',') fail('expected , or }');
      }
    }
    if (c === '[') {
      i++;
      const array: Exact[] = [];
      space();
      if (text[i] === ']') return (i++, array);
      for (;;) {
        array.push(value());
        space();
        const next = text[i++];
        if (next === ']') return array;
        if (next !== ',') fail('expected , or ]');
      }
    }
    for (const [word, literal] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return literal;
      }
    }
    return new Num(token(NUMBER));
  };
  const result = value();
  space();
  if (i !== text.length) fail('trailing input');
  return result;
}

// ---- raw drivers ----

/** The engine's own driver on the fixture's database, for setup and for reading the truth. */
interface Direct {
  exec(sql: string): Promise<void>;
  /** Rows as the driver gives them, one array per row. */
  rows(sql: string): Promise<unknown[][]>;
  close(): Promise<void>;
}

/** The driver's error message for `sql` (which must fail). */
async function directError(direct: Direct, sql: string): Promise<string> {
  return direct.rows(sql).then(
    () => {
      throw new Error(`expected ${sql} to fail`);
    },
    (err: Error) => err.message,
  );
}

async function pgDirect(config: Record<string, any>): Promise<Direct> {
  const client = new pg.Client({
    host: config.hostname,
    port: config.port,
    user: config.username,
    database: config.database,
    // Every value as the server's text, so nothing is rounded before the test maps it.
    types: {
      getTypeParser: (() => (text: string) => text) as unknown as pg.CustomTypesConfig['getTypeParser'],
    },
  });
  await client.connect();
  await client.query("SET TIME ZONE 'UTC'");
  return {
    exec: async (sql) => void (await client.query(sql)),
    rows: async (sql) => (await client.query<unknown[]>({ text: sql, rowMode: 'array' })).rows,
    close: () => client.end(),
  };
}

async function mysqlDirect(config: Record<string, any>): Promise<Direct> {
  const c = await mysql.createConnection({
    host: config.hostname,
    port: config.port,
    user: config.account,
    database: config.dbname,
    multipleStatements: true,
    charset: 'utf8mb4',
    // Exact forms: BIGINT and DECIMAL as digits, dates as the server's text.
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    // DOUBLE from the server's own text: mysql2's text-protocol float parsing is one ulp off for some
    // 16-digit values (632/7e0 reads 90.28571428571428; the server sends 90.28571428571429).
    typeCast: (field, next) => {
      if (field.type !== 'DOUBLE') return next();
      const text = field.string('ascii');
      return text === null ? null : Number.parseFloat(text);
    },
  });
  await c.query("SET time_zone = '+00:00'");
  return {
    exec: async (sql) => void (await c.query(sql)),
    rows: async (sql) => (await c.query({ sql, rowsAsArray: true }))[0] as unknown[][],
    close: () => c.end(),
  };
}

async function sqliteDirect(config: Record<string, any>, fileRoot: string): Promise<Direct> {
  const db = new Database(path.join(fileRoot, String(config.path)));
  return {
    exec: async (sql) => void db.exec(sql),
    rows: async (sql) => db.prepare(sql).raw(true).safeIntegers(true).all() as unknown[][],
    close: async () => void db.close(),
  };
}

async function duckdbDirect(config: Record<string, any>, fileRoot: string): Promise<Direct> {
  const file = path.join(fileRoot, String(config.path));
  // Open only for the duration of one call: qrun (in this process) opens the same file for its
  // queries, and two instances on one file at once could corrupt it.
  const withConnection = async <T>(fn: (c: DuckDBConnection) => Promise<T>): Promise<T> => {
    const instance = await DuckDBInstance.create(file);
    const connection = await instance.connect();
    try {
      return await fn(connection);
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  };
  return {
    exec: (sql) => withConnection(async (c) => void (await c.run(sql))),
    rows: (sql) => withConnection(async (c) => (await c.runAndReadAll(sql)).getRows() as unknown[][]),
    close: async () => undefined,
  };
}

// ---- per-engine cases ----

interface EngineCase {
  direct(config: Record<string, any>, fileRoot: string): Promise<Direct>;
  /** Creates qrun_big with BIG_ROWS rows whose id grows with the row number. */
  createBig: string[];
  bigColumns: string[];
  /** One raw driver row of the big query, in the contract's JSON form. */
  bigRow(raw: any[]): Exact[];
  values: {
    setup?: string[];
    sql: string;
    expected: Record<string, Exact>;
    types: Record<string, string>;
    /** Substrings the response text must contain verbatim, where exact digits or forms matter. */
    raw: string[];
  };
  /** Statements without a result set, run in order; the last one undoes the first. */
  noRows: string[];
  /** Counts the rows the INSERT among noRows left, as column `n`. */
  noRowsCount: string;
  parameters: { sql: string; expected: Record<string, Exact> };
  /**
   * Fails at run time at row 20,000. `pagesFirst`: the engine streams the rows before it, so qrun has
   * written pages by the time the error arrives.
   */
  midStreamError: { sql: string; message: RegExp; pagesFirst: boolean; details: Details };
  /** error_details of `SELEC 1`. */
  syntaxError: Details;
  /**
   * A failure after which the same query may pass: `hold` runs on the direct connection first (a lock),
   * `release` after. Absent where the engine has none a test can cause quickly.
   */
  retryable?: { hold: string[]; sql: string; release: string[]; details: Omit<Details, 'retryable'> };
}

/** error_details as the API shows them. */
interface Details {
  code: string;
  sqlstate: string | null;
  retryable: boolean;
  position: number | null;
}

const details = (code: string, sqlstate: string | null = null, position: number | null = null): Details => ({
  code,
  sqlstate,
  retryable: false,
  position,
});

const UUID = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';
const CONTROL_TEXT = 'tab\there\nnew\u0001 é 😀 日本';
const INJECTION = "'); DROP TABLE qrun_big; --";
const PARAMETERS = [`it's a "quote"`, 42, 2.5, true, null, INJECTION];
const NESTED_JSON = {
  a: [num(1), num('2.50'), { b: null }],
  big: num('12345678901234567890'),
};
const NESTED_JSON_TEXT = '{"a": [1, 2.50, {"b": null}], "big": 12345678901234567890}';

/** `YYYY-MM-DD HH:MM:SS[.f]` as the contract writes it. */
const isoLocal = (text: string) => text.replace(' ', 'T');

const CASES: Record<string, EngineCase> = {
  postgresql: {
    direct: pgDirect,
    createBig: [
      `CREATE TABLE qrun_big (id int8 PRIMARY KEY, label text NOT NULL, amount numeric(20,6), price float8,
        stamp timestamp, stamp_tz timestamptz, maybe int4, flag bool)`,
      `INSERT INTO qrun_big
       SELECT 9007199254740000 + n,
         'row ' || n || ' héllo 😀 ' || md5(n::text) || CASE WHEN n % 1000 = 0 THEN E'\\t"q"\\\\' ELSE '' END,
         (n * 1234567.891011 * CASE WHEN n % 2 = 0 THEN -1 ELSE 1 END)::numeric(20,6),
         n / 7.0::float8,
         timestamp '2024-01-01 00:00:00' + n * interval '1.000123 second',
         timestamptz '2024-01-01 00:00:00+00' + n * interval '61.5 second',
         CASE WHEN n % 7 = 0 THEN NULL ELSE n % 1000 END,
         n % 3 = 0
       FROM generate_series(1, ${BIG_ROWS}) AS n`,
    ],
    bigColumns: ['id', 'label', 'amount', 'price', 'stamp', 'stamp_tz', 'maybe', 'flag'],
    bigRow: ([id, label, amount, price, stamp, stampTz, maybe, flag]) => [
      num(id),
      label,
      amount,
      num(Number(price)),
      isoLocal(stamp),
      `${isoLocal(stampTz).replace(/\+00$/, '')}Z`,
      maybe === null ? null : num(maybe),
      flag === 't',
    ],
    values: {
      sql: `SELECT NULL::int4 AS n, true AS t, false AS f, (-32768)::int2 AS i2, 2147483647::int4 AS i4,
        9223372036854775807::int8 AS i8max, '-9223372036854775808'::int8 AS i8min,
        12345678901234567890.000001::numeric AS num, 1.5::float8 AS f8, 0.1::float4 AS f4,
        'NaN'::float8 AS nan, 'Infinity'::float8 AS inf, '-Infinity'::float4 AS ninf,
        '2026-01-02'::date AS d, '2026-01-02 03:04:05.123456'::timestamp AS ts, '2026-01-02 03:04:05'::timestamp AS ts0,
        '2026-01-01 12:00:00.5+02'::timestamptz AS tstz, '13:45:00.5'::time AS tm, '1 day 02:03:04'::interval AS iv,
        '${NESTED_JSON_TEXT}'::json AS j, '{"b": 1, "a": [true, null]}'::jsonb AS jb,
        ARRAY[1, NULL, 3]::int4[] AS ai, ARRAY['a', NULL, 'q"x', 'é😀']::text[] AS at,
        ARRAY[[1, 2], [3, NULL]]::int4[] AS nested, ARRAY[9223372036854775807]::int8[] AS ai8,
        '\\x00ff10'::bytea AS bin, '${UUID}'::uuid AS u,
        E'tab\\there\\nnew\\u0001 é 😀 日本' AS s, 'x'::varchar(5) AS vc, 'ab'::char(3) AS ch`,
      expected: {
        n: null,
        t: true,
        f: false,
        i2: num(-32768),
        i4: num(2147483647),
        i8max: num('9223372036854775807'),
        i8min: num('-9223372036854775808'),
        num: '12345678901234567890.000001',
        f8: num(1.5),
        f4: num(0.1),
        nan: 'NaN',
        inf: 'Infinity',
        ninf: '-Infinity',
        d: '2026-01-02',
        ts: '2026-01-02T03:04:05.123456',
        ts0: '2026-01-02T03:04:05',
        tstz: '2026-01-01T10:00:00.5Z',
        tm: '13:45:00.5',
        iv: '1 day 02:03:04',
        j: NESTED_JSON,
        jb: { a: [true, null], b: num(1) },
        ai: [num(1), null, num(3)],
        at: ['a', null, 'q"x', 'é😀'],
        nested: [
          [num(1), num(2)],
          [num(3), null],
        ],
        ai8: [num('9223372036854775807')],
        bin: 'AP8Q',
        u: UUID,
        s: CONTROL_TEXT,
        vc: 'x',
        ch: 'ab ',
      },
      types: {
        n: 'int4',
        t: 'bool',
        f: 'bool',
        i2: 'int2',
        i4: 'int4',
        i8max: 'int8',
        i8min: 'int8',
        num: 'numeric',
        f8: 'float8',
        f4: 'float4',
        nan: 'float8',
        inf: 'float8',
        ninf: 'float4',
        d: 'date',
        ts: 'timestamp',
        ts0: 'timestamp',
        tstz: 'timestamptz',
        tm: 'time',
        iv: 'interval',
        j: 'json',
        jb: 'jsonb',
        ai: '_int4',
        at: '_text',
        nested: '_int4',
        ai8: '_int8',
        bin: 'bytea',
        u: 'uuid',
        s: 'text',
        vc: 'varchar',
        ch: 'bpchar',
      },
      raw: [
        '"i8max":9223372036854775807,',
        '"i8min":-9223372036854775808,',
        '"num":"12345678901234567890.000001"',
        '"nan":"NaN"',
        '"inf":"Infinity"',
        '"ninf":"-Infinity"',
        '"d":"2026-01-02"',
        '"ts":"2026-01-02T03:04:05.123456"',
        '"tstz":"2026-01-01T10:00:00.5Z"',
        '"j":{',
        '"big": 12345678901234567890}',
        '"ai":[1,null,3]',
        '"nested":[[1,2],[3,null]]',
        '"ai8":[9223372036854775807]',
        '"bin":"AP8Q"',
      ],
    },
    noRows: [
      'CREATE TABLE qrun_norows (a int4)',
      'INSERT INTO qrun_norows VALUES (1), (2)',
      'SET search_path = public',
      'DROP TABLE qrun_norows',
    ],
    noRowsCount: 'SELECT count(*)::int4 AS n FROM qrun_norows',
    parameters: {
      sql: 'SELECT $1::text AS s, $2::int4 AS n, $3::float8 AS f, $4::bool AS b, $5::text AS z, $6::text AS inj',
      expected: { s: `it's a "quote"`, n: num(42), f: num(2.5), b: true, z: null, inj: INJECTION },
    },
    midStreamError: {
      sql: `SELECT n, 1 / (n - 20000) AS boom FROM generate_series(1, ${BIG_ROWS}) AS n`,
      message: /division by zero/,
      pagesFirst: true,
      details: details('division_by_zero', '22012'),
    },
    syntaxError: details('syntax_error', '42601', 1),
    // The session is ended by the server (57P01 admin_shutdown): a new one may well succeed.
    retryable: {
      hold: [],
      sql: 'SELECT pg_terminate_backend(pg_backend_pid())',
      release: [],
      details: { code: 'admin_shutdown', sqlstate: '57P01', position: null },
    },
  },

  mysql: {
    direct: mysqlDirect,
    createBig: [
      `CREATE TABLE qrun_big (id BIGINT PRIMARY KEY, label VARCHAR(200) NOT NULL, amount DECIMAL(20,6),
        price DOUBLE, stamp DATETIME(6), stamp_tz TIMESTAMP(6) NULL, maybe INT, flag BOOLEAN) DEFAULT CHARSET utf8mb4`,
      `INSERT INTO qrun_big
       SELECT 9007199254740000 + seq,
         CONCAT('row ', seq, ' héllo 😀 ', MD5(seq), IF(seq % 1000 = 0, CONCAT(CHAR(9 USING utf8mb4), '"q"\\\\'), '')),
         seq * 1234567.891011 * IF(seq % 2 = 0, -1, 1),
         seq / 7e0,
         TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq * 1000123 MICROSECOND,
         TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq * 61500000 MICROSECOND,
         IF(seq % 7 = 0, NULL, seq % 1000),
         seq % 3 = 0
       FROM seq_1_to_${BIG_ROWS}`,
    ],
    bigColumns: ['id', 'label', 'amount', 'price', 'stamp', 'stamp_tz', 'maybe', 'flag'],
    bigRow: ([id, label, amount, price, stamp, stampTz, maybe, flag]) => [
      num(id),
      label,
      amount,
      num(price),
      isoLocal(stamp),
      `${isoLocal(stampTz)}Z`,
      maybe === null ? null : num(maybe),
      num(flag),
    ],
    values: {
      setup: [
        `CREATE TABLE qrun_values (
          n INT NULL, b BOOLEAN, ti TINYINT, i INT, bi BIGINT, ubi BIGINT UNSIGNED, dc DECIMAL(30,6), f FLOAT,
          d DOUBLE, dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL, tm TIME(1), y YEAR, j JSON, bl BLOB,
          vb VARBINARY(8), tx TEXT, vc VARCHAR(20), ch CHAR(3), e ENUM('a','b'), st SET('x','y'), bt BIT(10), u UUID
        ) DEFAULT CHARSET utf8mb4`,
        // TIMESTAMP is stored in UTC from the session zone: 12:00:00.5 at +02:00 reads 10:00:00.5Z.
        `SET time_zone = '+02:00';
         INSERT INTO qrun_values VALUES (
          NULL, TRUE, -128, 2147483647, -9223372036854775808, 18446744073709551615, '12345678901234567890.000001',
          1.1, 0.1, '2026-01-02', '2026-01-02 03:04:05.123456', '2026-01-01 12:00:00.5', '13:45:00.5', 2026,
          '${NESTED_JSON_TEXT}', x'00ff10', x'0102',
          CONCAT('tab', CHAR(9 USING utf8mb4), 'here', CHAR(10 USING utf8mb4), 'new', CHAR(1 USING utf8mb4), ' é 😀 日本'),
          'it''s', 'ab', 'b', 'x,y', b'1010101010', '${UUID}');
         SET time_zone = '+00:00'`,
      ],
      sql: 'SELECT n, b, ti, i, bi, ubi, dc, f, d, dt, dtm, ts, tm, y, j, bl, vb, tx, vc, ch, e, st, bt, u FROM qrun_values',
      expected: {
        n: null,
        b: num(1), // BOOLEAN is TINYINT(1): MySQL has no boolean values
        ti: num(-128),
        i: num(2147483647),
        bi: num('-9223372036854775808'),
        ubi: num('18446744073709551615'),
        dc: '12345678901234567890.000001',
        f: num(1.1),
        d: num(0.1),
        dt: '2026-01-02',
        dtm: '2026-01-02T03:04:05.123456',
        ts: '2026-01-01T10:00:00.500000Z',
        tm: '13:45:00.5',
        y: num(2026),
        j: NESTED_JSON,
        bl: 'AP8Q',
        vb: 'AQI=',
        tx: CONTROL_TEXT,
        vc: "it's",
        ch: 'ab',
        e: 'b',
        st: 'x,y',
        bt: num(682),
        u: UUID,
      },
      types: {
        n: 'INT',
        b: 'TINYINT',
        ti: 'TINYINT',
        i: 'INT',
        bi: 'BIGINT',
        ubi: 'BIGINT UNSIGNED',
        dc: 'DECIMAL',
        f: 'FLOAT',
        d: 'DOUBLE',
        dt: 'DATE',
        dtm: 'DATETIME',
        ts: 'TIMESTAMP',
        tm: 'TIME',
        y: 'YEAR',
        j: 'JSON',
        bl: 'BLOB',
        vb: 'VARBINARY',
        tx: 'TEXT',
        vc: 'VARCHAR',
        ch: 'CHAR',
        e: 'ENUM',
        st: 'SET',
        bt: 'BIT',
        u: 'UUID',
      },
      raw: [
        '"bi":-9223372036854775808,',
        '"ubi":18446744073709551615,',
        '"dc":"12345678901234567890.000001"',
        '"dt":"2026-01-02"',
        '"dtm":"2026-01-02T03:04:05.123456"',
        '"ts":"2026-01-01T10:00:00.500000Z"',
        '"j":{',
        '"big": 12345678901234567890}',
        '"bl":"AP8Q"',
      ],
    },
    noRows: [
      'CREATE TABLE qrun_norows (a INT)',
      'INSERT INTO qrun_norows VALUES (1), (2)',
      'SET @qrun_x = 1',
      'DROP TABLE qrun_norows',
    ],
    noRowsCount: 'SELECT CAST(COUNT(*) AS SIGNED) AS n FROM qrun_norows',
    parameters: {
      sql: 'SELECT ? AS s, ? AS n, ? AS f, ? AS b, ? AS z, ? AS inj',
      // MySQL has no boolean type: true is bound and read back as TINYINT 1.
      expected: { s: `it's a "quote"`, n: num(42), f: num(2.5), b: num(1), z: null, inj: INJECTION },
    },
    midStreamError: {
      // The correlated subquery returns two rows only for row 20000, so the error comes mid-stream.
      sql: `SELECT s.seq AS n, (SELECT t.seq FROM seq_1_to_2 t WHERE s.seq = 20000) AS boom FROM seq_1_to_${BIG_ROWS} s`,
      message: /Subquery returns more than 1 row/,
      pagesFirst: true,
      details: details('ER_SUBQUERY_NO_1_ROW', '21000'),
    },
    syntaxError: details('ER_PARSE_ERROR', '42000'),
    // A row locked by another transaction past the lock wait timeout (1205): retried later, it may pass.
    retryable: {
      hold: ['START TRANSACTION', 'SELECT id FROM qrun_big WHERE id = 9007199254740001 FOR UPDATE'],
      sql: 'SET STATEMENT innodb_lock_wait_timeout = 1 FOR SELECT id FROM qrun_big WHERE id = 9007199254740001 FOR UPDATE',
      release: ['ROLLBACK'],
      details: { code: 'ER_LOCK_WAIT_TIMEOUT', sqlstate: 'HY000', position: null },
    },
  },

  sqlite: {
    direct: sqliteDirect,
    createBig: [
      `CREATE TABLE qrun_big (id INTEGER PRIMARY KEY, label TEXT NOT NULL, amount DECIMAL(20,6), price REAL,
        stamp DATETIME, maybe INTEGER, flag BOOLEAN)`,
      `WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${BIG_ROWS})
       INSERT INTO qrun_big
       SELECT 9007199254740000 + n,
         'row ' || n || ' héllo 😀 ' || printf('%08x', (n * 2654435761) % 4294967296)
           || CASE WHEN n % 1000 = 0 THEN char(9) || '"q"\\' ELSE '' END,
         round(n * 1234.567891 * CASE WHEN n % 2 = 0 THEN -1 ELSE 1 END, 6),
         n / 7.0,
         strftime('%Y-%m-%d %H:%M:%f', '2024-01-01', '+' || n || '.123 seconds'),
         CASE WHEN n % 7 = 0 THEN NULL ELSE n % 1000 END,
         n % 3 = 0
       FROM s`,
    ],
    bigColumns: ['id', 'label', 'amount', 'price', 'stamp', 'maybe', 'flag'],
    // SQLite values keep their storage class: DECIMAL is REAL (or INTEGER), DATETIME is the stored text.
    bigRow: ([id, label, amount, price, stamp, maybe, flag]) => [
      num(id),
      label,
      num(amount),
      num(price),
      stamp,
      maybe === null ? null : num(maybe),
      num(flag),
    ],
    values: {
      // SQLite has no NaN (it becomes NULL), no dates, no json type: those are text.
      sql: `SELECT NULL AS n, TRUE AS t, 9223372036854775807 AS imax, -9223372036854775808 AS imin, 1.5 AS r,
        9e999 AS inf, -9e999 AS ninf, 'tab' || char(9) || 'here' || char(10) || 'new' || char(1) || ' é 😀 日本' AS s,
        x'00ff10' AS b, date('2026-01-02') AS d, json_object('a', json_array(1, 2.5, NULL)) AS j`,
      expected: {
        n: null,
        t: num(1),
        imax: num('9223372036854775807'),
        imin: num('-9223372036854775808'),
        r: num(1.5),
        inf: 'Infinity',
        ninf: '-Infinity',
        s: CONTROL_TEXT,
        b: 'AP8Q',
        d: '2026-01-02',
        j: '{"a":[1,2.5,null]}',
      },
      types: {
        n: 'NULL',
        t: 'INTEGER',
        imax: 'INTEGER',
        imin: 'INTEGER',
        r: 'REAL',
        inf: 'REAL',
        ninf: 'REAL',
        s: 'TEXT',
        b: 'BLOB',
        d: 'TEXT',
        j: 'TEXT',
      },
      raw: [
        '"imax":9223372036854775807,',
        '"imin":-9223372036854775808,',
        '"inf":"Infinity"',
        '"ninf":"-Infinity"',
        '"b":"AP8Q"',
      ],
    },
    noRows: [
      'CREATE TABLE qrun_norows (a INTEGER)',
      'INSERT INTO qrun_norows VALUES (1), (2)',
      // SQLite's SET.
      'PRAGMA user_version = 7',
      'DROP TABLE qrun_norows',
    ],
    noRowsCount: 'SELECT count(*) AS n FROM qrun_norows',
    parameters: {
      sql: 'SELECT ? AS s, ? AS n, ? AS f, ? AS b, ? AS z, ? AS inj',
      // SQLite has no boolean type: true is bound as the integer 1.
      expected: { s: `it's a "quote"`, n: num(42), f: num(2.5), b: num(1), z: null, inj: INJECTION },
    },
    midStreamError: {
      sql: `WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${BIG_ROWS})
        SELECT n, CASE WHEN n = 20000 THEN json('not json') ELSE n END AS boom FROM s`,
      message: /malformed JSON/,
      pagesFirst: true,
      details: details('SQLITE_ERROR'),
    },
    // SQLITE_BUSY (retryable) takes the busy timeout twice over to cause: test/unit/error-details.test.ts.
    syntaxError: details('SQLITE_ERROR'),
  },

  duckdb: {
    direct: duckdbDirect,
    createBig: [
      `CREATE TABLE qrun_big AS
       SELECT (9007199254740000 + n)::BIGINT AS id,
         'row ' || n || ' héllo 😀 ' || md5(n::VARCHAR) || CASE WHEN n % 1000 = 0 THEN chr(9) || '"q"\\' ELSE '' END AS label,
         (n * 1234567.891011 * CASE WHEN n % 2 = 0 THEN -1 ELSE 1 END)::DECIMAL(20,6) AS amount,
         n / 7 AS price,
         TIMESTAMP '2024-01-01 00:00:00' + to_microseconds(n * 1000123) AS stamp,
         CASE WHEN n % 7 = 0 THEN NULL ELSE (n % 1000)::INTEGER END AS maybe,
         n % 3 = 0 AS flag,
         [n, NULL] AS list
       FROM range(1, ${BIG_ROWS + 1}) AS t(n)`,
    ],
    bigColumns: ['id', 'label', 'amount', 'price', 'stamp', 'maybe', 'flag', 'list'],
    bigRow: ([id, label, amount, price, stamp, maybe, flag, list]) => [
      num(id),
      label,
      String(amount),
      num(price),
      isoLocal(String(stamp)),
      maybe === null ? null : num(maybe),
      flag,
      (list.items as (bigint | null)[]).map((x) => (x === null ? null : num(x))),
    ],
    values: {
      sql: `SELECT NULL::INTEGER AS n, true AS t, false AS f, (-128)::TINYINT AS i1, 4294967295::UINTEGER AS u4,
        9223372036854775807::BIGINT AS i8max, (-9223372036854775808)::BIGINT AS i8min,
        18446744073709551615::UBIGINT AS ubi, 170141183460469231731687303715884105727::HUGEINT AS huge,
        12345678901234567890.000001::DECIMAL(38,6) AS dec, 1.5::DOUBLE AS dbl, 0.1::FLOAT AS flt,
        'NaN'::DOUBLE AS nan, 'Infinity'::DOUBLE AS inf, '-Infinity'::FLOAT AS ninf,
        DATE '2026-01-02' AS d, TIMESTAMP '2026-01-02 03:04:05.123456' AS ts,
        TIMESTAMPTZ '2026-01-01 12:00:00.5+02' AS tstz, TIME '13:45:00.5' AS tm, INTERVAL '1 day 02:03:04' AS iv,
        '${NESTED_JSON_TEXT}'::JSON AS j, [1, NULL, 3] AS li, ['a', NULL, 'é😀'] AS ls,
        [[1, 2], [3, NULL]] AS nested, '\\x00\\xFF\\x10'::BLOB AS bin, '${UUID}'::UUID AS u,
        'tab' || chr(9) || 'here' || chr(10) || 'new' || chr(1) || ' é 😀 日本' AS s,
        {'k': 1, 'l': [2]} AS st, MAP {'k': 1.25::DECIMAL(4,2)} AS m, 'b'::ENUM('a', 'b') AS e`,
      expected: {
        n: null,
        t: true,
        f: false,
        i1: num(-128),
        u4: num(4294967295),
        i8max: num('9223372036854775807'),
        i8min: num('-9223372036854775808'),
        ubi: num('18446744073709551615'),
        huge: num('170141183460469231731687303715884105727'),
        dec: '12345678901234567890.000001',
        dbl: num(1.5),
        flt: num(0.1),
        nan: 'NaN',
        inf: 'Infinity',
        ninf: '-Infinity',
        d: '2026-01-02',
        ts: '2026-01-02T03:04:05.123456',
        tstz: '2026-01-01T10:00:00.5Z',
        tm: '13:45:00.5',
        iv: '1 day 02:03:04',
        j: NESTED_JSON,
        li: [num(1), null, num(3)],
        ls: ['a', null, 'é😀'],
        nested: [
          [num(1), num(2)],
          [num(3), null],
        ],
        bin: 'AP8Q',
        u: UUID,
        s: CONTROL_TEXT,
        st: { k: num(1), l: [num(2)] },
        m: { k: '1.25' },
        e: 'b',
      },
      types: {
        n: 'INTEGER',
        t: 'BOOLEAN',
        f: 'BOOLEAN',
        i1: 'TINYINT',
        u4: 'UINTEGER',
        i8max: 'BIGINT',
        i8min: 'BIGINT',
        ubi: 'UBIGINT',
        huge: 'HUGEINT',
        dec: 'DECIMAL(38,6)',
        dbl: 'DOUBLE',
        flt: 'FLOAT',
        nan: 'DOUBLE',
        inf: 'DOUBLE',
        ninf: 'FLOAT',
        d: 'DATE',
        ts: 'TIMESTAMP',
        tstz: 'TIMESTAMP WITH TIME ZONE',
        tm: 'TIME',
        iv: 'INTERVAL',
        j: 'JSON',
        li: 'INTEGER[]',
        ls: 'VARCHAR[]',
        nested: 'INTEGER[][]',
        bin: 'BLOB',
        u: 'UUID',
        s: 'VARCHAR',
        st: 'STRUCT("k" INTEGER, "l" INTEGER[])',
        m: 'MAP(VARCHAR, DECIMAL(4,2))',
        e: "ENUM('a', 'b')",
      },
      raw: [
        '"i8max":9223372036854775807,',
        '"i8min":-9223372036854775808,',
        '"ubi":18446744073709551615,',
        '"huge":170141183460469231731687303715884105727,',
        '"dec":"12345678901234567890.000001"',
        '"nan":"NaN"',
        '"inf":"Infinity"',
        '"ninf":"-Infinity"',
        '"d":"2026-01-02"',
        '"ts":"2026-01-02T03:04:05.123456"',
        '"tstz":"2026-01-01T10:00:00.5Z"',
        '"j":{',
        '"big": 12345678901234567890}',
        '"li":[1,null,3]',
        '"nested":[[1,2],[3,null]]',
        '"bin":"AP8Q"',
      ],
    },
    noRows: [
      'CREATE TABLE qrun_norows (a INTEGER)',
      'INSERT INTO qrun_norows VALUES (1), (2)',
      // qrun locks DuckDB's configuration, but session variables are still allowed.
      'SET VARIABLE qrun_x = 1',
      'DROP TABLE qrun_norows',
    ],
    noRowsCount: 'SELECT count(*)::INTEGER AS n FROM qrun_norows',
    parameters: {
      sql: 'SELECT ? AS s, ? AS n, ? AS f, ? AS b, ? AS z, ? AS inj',
      expected: { s: `it's a "quote"`, n: num(42), f: num(2.5), b: true, z: null, inj: INJECTION },
    },
    midStreamError: {
      // DuckDB computes a result this small ahead, so the error comes before the first chunk. (With a
      // result large enough to fail after the first chunks, @duckdb/node-api reports the failure as the
      // end of the stream instead of an error: see the report on duckdb-connector.ts.)
      sql: `SELECT range AS n, CASE WHEN range = 20000 THEN error('boom at row 20000') ELSE range END AS boom
        FROM range(${BIG_ROWS})`,
      message: /boom at row 20000/,
      pagesFirst: false,
      details: details('invalid_input_error'),
    },
    // A transaction conflict or a file locked by another process (retryable): test/unit/error-details.test.ts.
    syntaxError: details('parser_error'),
  },
};

// ---- helpers ----

function rowObjects(columns: string[], rows: Exact[][]): Record<string, Exact>[] {
  return rows.map((row) => Object.fromEntries(columns.map((c, i) => [c, row[i] ?? null])));
}

const TERMINAL = new Set(['done', 'failed']);

describe.each(engineFixtures())('$type through HTTP', (fixture: EngineFixture) => {
  const engine = CASES[fixture.type]!;
  let server: TestServer;
  let direct: Direct;
  let connectionId: string;
  /** Pages the result store was asked to write, by query id. */
  const written = new Map<string, number>();

  const auth = () => ({ bearer: server.adminKey });
  const get = (p: string) => server.request('GET', p, { auth: auth() });
  const post = (p: string, body?: unknown) => server.request('POST', p, { auth: auth(), body });

  async function submit(query: string, extra: Record<string, unknown> = {}): Promise<string> {
    const r = await post(`/api/connections/${connectionId}/query`, { query, ...extra });
    expect(r.status, r.text).toBe(200);
    expect(r.body.data.status).toBe('created');
    return r.body.data.id as string;
  }

  function finished(id: string): Promise<Response> {
    return waitForQueryEnd(server, auth(), id, { waitSeconds: 10 });
  }

  async function run(query: string, extra: Record<string, unknown> = {}): Promise<Response> {
    return finished(await submit(query, extra));
  }

  async function waitRunning(id: string): Promise<void> {
    await waitUntil(`query ${id} to run`, async () => {
      const status = (await get(`/api/queries/${id}`)).body.data.status;
      if (TERMINAL.has(status)) throw new Error(`query ${id} ended ${status} before it was seen running`);
      return status === 'running';
    });
  }

  const bigQuery = `SELECT ${engine.bigColumns.join(', ')} FROM qrun_big ORDER BY id`;

  beforeAll(async () => {
    server = await startTestServer({ QRUN_PAGE_ROWS: String(PAGE_ROWS) });
    // File engines keep their database in the organization's own directory of the server.
    let fileDir: string | undefined;
    if (fixture.connector.capabilities.fileBased) {
      const me = await get('/api/me');
      fileDir = path.join(server.fileRoot, me.body.data.organization_id as string);
      await mkdir(fileDir, { mode: 0o700 });
    }
    const { config, context } = await fixture.setup(fileDir);
    direct = await engine.direct(config, context.fileDir);
    for (const sql of [...engine.createBig, ...(engine.values.setup ?? [])]) await direct.exec(sql);
    // Counts page writes, so the mid-stream failure test knows there were pages to delete.
    const store = server.qrun.results;
    const putPage = store.putPage.bind(store);
    store.putPage = (queryId, page, bytes) => {
      written.set(queryId, (written.get(queryId) ?? 0) + 1);
      return putPage(queryId, page, bytes);
    };
    const created = await post('/api/connections', {
      name: `query-engines ${fixture.type}`,
      type: fixture.type,
      configuration: config,
    });
    expect(created.status, created.text).toBe(200);
    connectionId = created.body.data.id;
  });

  afterAll(async () => {
    await server?.close();
    await direct?.close();
    await fixture.teardown();
  });

  it(`streams ${BIG_ROWS} rows in ${BIG_ROWS / PAGE_ROWS} pages, row for row what the driver reads`, async () => {
    const truth = rowObjects(engine.bigColumns, (await direct.rows(bigQuery)).map(engine.bigRow));
    expect(truth).toHaveLength(BIG_ROWS);

    const first = await run(bigQuery);
    expect(first.body.data.status, first.text).toBe('done');
    const rows: Record<string, Exact>[] = [];
    const pages: Response[] = [];
    let page: Response | undefined = first;
    while (page) {
      pages.push(page);
      const { data, links }: { data: any; links: any } = page.body;
      expect(data.count).toBe(BIG_ROWS);
      expect(data.truncated).toBe(false);
      expect(data.fields).toEqual(engine.bigColumns);
      expect(links.previous === null).toBe(pages.length === 1);
      const exact = parseExact(page.text) as { data: { results: Record<string, Exact>[] } };
      rows.push(...exact.data.results);
      page = links.next ? await get(links.next) : undefined;
      if (page) expect(page.status, page.text).toBe(200);
    }
    expect(pages).toHaveLength(BIG_ROWS / PAGE_ROWS);
    expect(pages.every((p) => p.body.data.results.length === PAGE_ROWS)).toBe(true);

    // links.previous leads back to exactly the page before.
    for (let i = 1; i < pages.length; i++) {
      const back = await get(pages[i]!.body.links.previous);
      expect(back.body.data.results).toEqual(pages[i - 1]!.body.data.results);
    }

    // No row twice, order kept.
    const ids = rows.map((r) => BigInt((r['id'] as Num).text));
    expect(new Set(ids).size).toBe(BIG_ROWS);
    expect(ids.every((id, i) => i === 0 || id > ids[i - 1]!)).toBe(true);

    expect(rows).toHaveLength(truth.length);
    const mismatch = rows.findIndex((row, i) => !isDeepStrictEqual(row, truth[i]));
    if (mismatch >= 0) expect(rows[mismatch], `row ${mismatch}`).toEqual(truth[mismatch]);
  });

  it('writes every value type exactly (checked on the response text)', async () => {
    const r = await run(engine.values.sql);
    expect(r.body.data.status, r.text).toBe('done');
    expect(r.headers.get('content-type')).toMatch(/charset=utf-8/i);
    // Valid UTF-8 all through: fetch would have replaced a broken sequence with U+FFFD.
    expect(r.text).not.toContain('\uFFFD');
    for (const fragment of engine.values.raw) expect(r.text).toContain(fragment);
    const exact = parseExact(r.text) as any;
    expect(exact.data.results).toEqual([engine.values.expected]);
    expect(r.body.data.fields).toEqual(Object.keys(engine.values.expected));
    expect(r.body.data.schema).toEqual(
      Object.entries(engine.values.types).map(([name, type]) => ({ name, type })),
    );
  });

  it('keeps duplicate column names as a, a_2, a_3', async () => {
    const r = await run('SELECT 1 AS a, 2 AS a, 3 AS a');
    expect(r.body.data.status, r.text).toBe('done');
    expect(r.body.data.fields).toEqual(['a', 'a_2', 'a_3']);
    expect(r.body.data.schema.map((c: { name: string }) => c.name)).toEqual(['a', 'a_2', 'a_3']);
    expect(r.text).toContain('"results":[{"a":1,"a_2":2,"a_3":3}]');
  });

  it('statements without rows end done with no fields, count 0 and no results', async () => {
    for (const [i, sql] of engine.noRows.entries()) {
      const r = await run(sql);
      expect(r.body.data, `${sql}: ${r.text}`).toMatchObject({
        status: 'done',
        fields: [],
        count: 0,
        results: [],
        error: null,
      });
      expect(r.body.links).toEqual({
        next: null,
        previous: null,
        export: `/api/queries/${r.body.data.id}/export`,
      });
      if (i === engine.noRows.length - 2) {
        // Before the DROP: the INSERT really happened.
        const count = await run(engine.noRowsCount);
        expect(count.body.data.results, count.text).toEqual([{ n: 2 }]);
      }
    }
  });

  it("a syntax error ends failed with the database's own message and leaves no pages", async () => {
    const sql = 'SELEC 1';
    const r = await run(sql);
    expect(r.body.data.status, r.text).toBe('failed');
    expect(r.body.data.error).toContain(await directError(direct, sql));
    expect(r.body.data.error_details).toEqual(engine.syntaxError);
    expect(r.body.data.results).toBeUndefined();
    expect(r.body.links).toBeUndefined();
    expect(await server.pagesExist(r.body.data.id)).toBe(false);
  });

  it('an error at run time ends failed and deletes the pages already written', async () => {
    const { sql, message, pagesFirst, details: expected } = engine.midStreamError;
    const r = await run(sql);
    const id = r.body.data.id;
    expect(r.body.data.status, r.text).toBe('failed');
    expect(r.body.data.error).toMatch(message);
    expect(r.body.data.error_details).toEqual(expected);
    if (pagesFirst) expect(written.get(id) ?? 0).toBeGreaterThan(0);
    expect(await server.pagesExist(id)).toBe(false);
  });

  it.skipIf(engine.retryable === undefined)(
    'a failure that may pass when run again says retryable: true',
    async () => {
      const { hold, sql, release, details: expected } = engine.retryable!;
      for (const statement of hold) await direct.exec(statement);
      let r: Response;
      try {
        r = await run(sql);
      } finally {
        for (const statement of release) await direct.exec(statement);
      }
      expect(r.body.data.status, r.text).toBe('failed');
      expect(r.body.data.error_details).toEqual({ ...expected, retryable: true });
    },
  );

  it('binds parameters as values, never as SQL', async () => {
    const r = await run(engine.parameters.sql, { parameters: PARAMETERS });
    expect(r.body.data.status, r.text).toBe('done');
    expect((parseExact(r.text) as any).data.results).toEqual([engine.parameters.expected]);
    const [[count]] = (await direct.rows('SELECT count(*) FROM qrun_big')) as [[unknown]];
    expect(Number(count)).toBe(BIG_ROWS);
  });

  it('cancel stops the statement on the database and ends the query failed "canceled"', async () => {
    const marker = `qrun_cancel_${randomBytes(4).toString('hex')}`;
    const id = await submit(`/* ${marker} */ ${fixture.sql.slow(120)}`);
    await waitRunning(id);
    const running = fixture.runningStatements;
    if (running)
      await waitUntil('the statement to reach the server', async () => (await running(marker)) > 0);

    const cancel = await post(`/api/queries/${id}/cancel`);
    expect(cancel.status, cancel.text).toBe(200);
    expect(cancel.body.data.id).toBe(id);
    const r = await finished(id);
    expect(r.body.data).toEqual({
      id,
      status: 'failed',
      error: 'canceled',
      error_details: { code: 'canceled', sqlstate: null, retryable: false, position: null },
    });
    if (running)
      await waitUntil('the statement to leave the server', async () => (await running(marker)) === 0);
    expect(await server.pagesExist(id)).toBe(false);

    const again = await post(`/api/queries/${id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.key).toBe('query_finished');
  });

  it('timeout_seconds stops a slow statement and ends the query failed with a timeout error', async () => {
    const marker = `qrun_timeout_${randomBytes(4).toString('hex')}`;
    const r = await run(`/* ${marker} */ ${fixture.sql.slow(120)}`, { timeout_seconds: 1 });
    expect(r.body.data.status, r.text).toBe('failed');
    expect(r.body.data.error).toMatch(/timeout/i);
    expect(r.body.data.error_details).toEqual({
      code: 'timeout',
      sqlstate: null,
      retryable: false,
      position: null,
    });
    const running = fixture.runningStatements;
    if (running)
      await waitUntil('the statement to leave the server', async () => (await running(marker)) === 0);
  });

  it('max_rows cuts the result short and says so', async () => {
    const r = await run(bigQuery, { max_rows: 10 });
    expect(r.body.data, r.text).toMatchObject({ status: 'done', count: 10, truncated: true });
    expect(r.body.data.results).toHaveLength(10);
    expect(r.body.links).toEqual({
      next: null,
      previous: null,
      export: `/api/queries/${r.body.data.id}/export`,
    });
    const ids = (parseExact(r.text) as any).data.results.map((row: { id: Num }) => row.id.text);
    expect(ids).toEqual(Array.from({ length: 10 }, (_, i) => String(9007199254740001n + BigInt(i))));
  });
});
