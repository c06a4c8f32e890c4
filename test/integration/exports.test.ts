/**
 * GET /api/queries/{id}/export through real HTTP on every engine: each format read back by an independent
 * reader (DuckDB's read_csv and read_parquet, apache-arrow's IPC reader, lossless-json for ndjson and
 * json), every row and every value compared with what GET /api/queries/{id}'s pages return. Plus pages,
 * gzip, the csv options, ownership, states and bad input.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { get as httpGet, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { type Data, tableFromIPC, Type, type Vector } from 'apache-arrow';
import { isLosslessNumber, parse, type LosslessNumber } from 'lossless-json';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineFixture } from '../helpers/engine-fixture.js';
import { engineFixtures } from '../helpers/engines.js';
import { startTestServer, type Response, type TestServer } from '../helpers/server.js';
import { createPostgresConnection, createTenant, submitQuery } from '../helpers/tenants.js';
import { waitForQueryEnd } from '../helpers/wait.js';

type Exact = null | boolean | string | LosslessNumber | Exact[] | { [key: string]: Exact };
type Row = Record<string, Exact>;

const parseExact = (text: string): Exact => parse(text) as Exact;

const UUID = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';
const NESTED_JSON_TEXT = '{"a": [1, 2.50, {"b": null}], "big": 12345678901234567890}';

/** Each engine's value table (as in query-engines.test.ts), and the Parquet types some columns must get. */
const VALUES: Record<string, { setup?: string[]; sql: string; types: Record<string, string> }> = {
  postgresql: {
    sql: `SELECT NULL::int4 AS n, true AS t, false AS f, (-32768)::int2 AS i2, 2147483647::int4 AS i4,
      9223372036854775807::int8 AS i8max, '-9223372036854775808'::int8 AS i8min,
      12345678901234567890.000001::numeric AS num, 12.5::numeric(10,3) AS num_ps, 1.5::float8 AS f8, 0.1::float4 AS f4,
      'NaN'::float8 AS nan, 'Infinity'::float8 AS inf, '-Infinity'::float4 AS ninf,
      '2026-01-02'::date AS d, '2026-01-02 03:04:05.123456'::timestamp AS ts, '2026-01-02 03:04:05'::timestamp AS ts0,
      '2026-01-01 12:00:00.5+02'::timestamptz AS tstz, '13:45:00.5'::time AS tm, '1 day 02:03:04'::interval AS iv,
      '${NESTED_JSON_TEXT}'::json AS j, '{"b": 1, "a": [true, null]}'::jsonb AS jb,
      ARRAY[1, NULL, 3]::int4[] AS ai, ARRAY['a', NULL, 'q"x', 'é😀']::text[] AS at,
      ARRAY[[1, 2], [3, NULL]]::int4[] AS nested, ARRAY[9223372036854775807]::int8[] AS ai8,
      '\\x00ff10'::bytea AS bin, '${UUID}'::uuid AS u,
      E'tab\\there\\nnew\\u0001 é 😀 日本, "q"' AS s, ''::text AS empty, 'x'::varchar(5) AS vc, 'ab'::char(3) AS ch`,
    types: {
      t: 'BOOLEAN',
      i2: 'BIGINT',
      i8max: 'BIGINT',
      num: 'VARCHAR',
      f8: 'DOUBLE',
      d: 'DATE',
      ts: 'TIMESTAMP',
      tstz: 'TIMESTAMP WITH TIME ZONE',
      j: 'VARCHAR',
      ai: 'BIGINT[]',
      at: 'VARCHAR[]',
      nested: 'VARCHAR',
      bin: 'BLOB',
      s: 'VARCHAR',
    },
  },
  mysql: {
    setup: [
      `CREATE TABLE qrun_values (
        n INT NULL, b BOOLEAN, ti TINYINT, i INT, bi BIGINT, ubi BIGINT UNSIGNED, dc DECIMAL(30,6), f FLOAT,
        d DOUBLE, dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL, tm TIME(1), y YEAR, j JSON, bl BLOB,
        vb VARBINARY(8), tx TEXT, vc VARCHAR(20), ch CHAR(3), e ENUM('a','b'), st SET('x','y'), bt BIT(10)
      ) DEFAULT CHARSET utf8mb4`,
      `INSERT INTO qrun_values VALUES (
        NULL, TRUE, -128, 2147483647, -9223372036854775808, 18446744073709551615, '12345678901234567890.000001',
        1.1, 0.1, '2026-01-02', '2026-01-02 03:04:05.123456', '2026-01-01 12:00:00.5', '13:45:00.5', 2026,
        '${NESTED_JSON_TEXT}', x'00ff10', x'0102',
        CONCAT('tab', CHAR(9 USING utf8mb4), 'here', CHAR(10 USING utf8mb4), 'new', CHAR(1 USING utf8mb4), ' é 😀 日本'),
        'it''s', 'ab', 'b', 'x,y', b'1010101010')`,
    ],
    sql: 'SELECT n, b, ti, i, bi, ubi, dc, f, d, dt, dtm, ts, tm, y, j, bl, vb, tx, vc, ch, e, st, bt FROM qrun_values',
    types: {
      ti: 'BIGINT',
      bi: 'BIGINT',
      ubi: 'UBIGINT',
      dc: 'VARCHAR',
      d: 'DOUBLE',
      dt: 'DATE',
      dtm: 'TIMESTAMP',
      ts: 'TIMESTAMP WITH TIME ZONE',
      bl: 'BLOB',
      j: 'VARCHAR',
    },
  },
  sqlite: {
    sql: `SELECT NULL AS n, TRUE AS t, 9223372036854775807 AS imax, -9223372036854775808 AS imin, 1.5 AS r,
      9e999 AS inf, -9e999 AS ninf, 'tab' || char(9) || 'here' || char(10) || 'new' || char(1) || ' é 😀 日本' AS s,
      x'00ff10' AS b, date('2026-01-02') AS d, json_object('a', json_array(1, 2.5, NULL)) AS j`,
    types: { imax: 'BIGINT', imin: 'BIGINT', r: 'DOUBLE', inf: 'DOUBLE', b: 'BLOB', s: 'VARCHAR' },
  },
  duckdb: {
    sql: `SELECT NULL::INTEGER AS n, true AS t, false AS f, (-128)::TINYINT AS i1, 4294967295::UINTEGER AS u4,
      9223372036854775807::BIGINT AS i8max, (-9223372036854775808)::BIGINT AS i8min,
      18446744073709551615::UBIGINT AS ubi, 170141183460469231731687303715884105727::HUGEINT AS huge,
      12345678901234567890.000001::DECIMAL(38,6) AS dec, 1.25::DECIMAL(4,2) AS dec_small, 1.5::DOUBLE AS dbl,
      0.1::FLOAT AS flt, 'NaN'::DOUBLE AS nan, 'Infinity'::DOUBLE AS inf, '-Infinity'::FLOAT AS ninf,
      DATE '2026-01-02' AS d, DATE '0001-01-01' AS d_min, TIMESTAMP '2026-01-02 03:04:05.123456' AS ts,
      TIMESTAMPTZ '2026-01-01 12:00:00.5+02' AS tstz, TIME '13:45:00.5' AS tm, INTERVAL '1 day 02:03:04' AS iv,
      '${NESTED_JSON_TEXT}'::JSON AS j, [1, NULL, 3] AS li, ['a', NULL, 'é😀'] AS ls,
      [[1, 2], [3, NULL]] AS nested, [1.5, NULL] AS ld, '\\x00\\xFF\\x10'::BLOB AS bin, '${UUID}'::UUID AS u,
      'tab' || chr(9) || 'here' || chr(10) || 'new' || chr(1) || ' é 😀 日本' AS s,
      {'k': 1, 'l': [2]} AS st, MAP {'k': 1.25::DECIMAL(4,2)} AS m, 'b'::ENUM('a', 'b') AS e`,
    types: {
      i1: 'BIGINT',
      i8max: 'BIGINT',
      ubi: 'UBIGINT',
      huge: 'VARCHAR',
      dec: 'DECIMAL(38,6)',
      dec_small: 'DECIMAL(4,2)',
      dbl: 'DOUBLE',
      d: 'DATE',
      ts: 'TIMESTAMP',
      tstz: 'TIMESTAMP WITH TIME ZONE',
      li: 'BIGINT[]',
      ls: 'VARCHAR[]',
      nested: 'BIGINT[][]',
      ld: 'DECIMAL(2,1)[]',
      bin: 'BLOB',
      st: 'VARCHAR',
      m: 'VARCHAR',
    },
  },
};

/** Two rows: the value table's, then one of NULLs (a LEFT JOIN that matches only the first key). */
const withNullRow = (sql: string) =>
  `SELECT v.* FROM (SELECT 1 AS k UNION ALL SELECT 2 AS k) qk LEFT JOIN (${sql}) v ON qk.k = 1 ORDER BY qk.k`;

// ---- reading what the server says ----

interface Truth {
  fields: string[];
  schema: { name: string; type: string }[];
  rows: Row[];
  pages: number;
}

let server: TestServer;
let scratch: string;
let duck: DuckDBConnection;
let duckInstance: DuckDBInstance;

const admin = () => ({ bearer: server.adminKey });

/** Every row of the result, following links.next from the first page (lossless numbers). */
async function truthOf(id: string, auth = admin()): Promise<Truth> {
  let url: string | null = `/api/queries/${id}`;
  const rows: Row[] = [];
  let pages = 0;
  let first: any;
  while (url) {
    const r: Response = await server.request('GET', url, { auth });
    expect(r.status, r.text).toBe(200);
    first ??= r.body.data;
    pages++;
    rows.push(...((parseExact(r.text) as any).data.results as Row[]));
    expect(r.body.links.export).toBe(`/api/queries/${id}/export`);
    url = r.body.links.next;
  }
  expect(rows).toHaveLength(first.count);
  return { fields: first.fields, schema: first.schema, rows, pages };
}

async function download(
  id: string,
  query: string,
  headers: Record<string, string> = {},
  auth = admin(),
): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
  const res = await fetch(`${server.url}/api/queries/${id}/export?${query}`, {
    headers: { authorization: `Bearer ${auth.bearer}`, 'accept-encoding': 'identity', ...headers },
  });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

/** The response as sent, without fetch's transparent decompression. */
function rawDownload(
  id: string,
  query: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: IncomingHttpHeaders; bytes: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpGet(
      `${server.url}/api/queries/${id}/export?${query}`,
      { headers: { authorization: `Bearer ${server.adminKey}`, ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, bytes: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
  });
}

async function exported(id: string, query: string): Promise<Buffer> {
  const r = await download(id, query);
  expect(r.status, r.bytes.toString('utf8', 0, 500)).toBe(200);
  expect(r.headers.get('content-disposition')).toMatch(new RegExp(`^attachment; filename="${id}\\.\\w+"$`));
  return r.bytes;
}

async function toFile(bytes: Buffer, name: string): Promise<string> {
  const file = path.join(scratch, `${Math.random().toString(36).slice(2)}-${name}`);
  await writeFile(file, bytes);
  return file;
}

const sqlString = (text: string) => `'${text.replaceAll("'", "''")}'`;

// ---- comparing values ----

function normDecimal(text: string): string {
  let t = text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
  t = t.replace(/^(-?)0+(?=\d)/, '$1');
  return t === '-0' ? '0' : t;
}

function sameNumber(a: number, b: number): boolean {
  return Object.is(a, b) || a === b;
}

/** A contract number (or "NaN", "Infinity", "-Infinity") as a JS number. */
function numberOf(v: Exact): number {
  return isLosslessNumber(v) ? Number(v.value) : Number(v as string);
}

/** Microseconds since the epoch of `YYYY-MM-DD[T ]HH:MM:SS[.f][Z|+00]`. */
function micros(text: string): bigint {
  const m = /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?)?(?:Z|\+00)?$/.exec(text);
  if (!m) throw new Error(`not a timestamp: ${text}`);
  const date = new Date(0);
  date.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  date.setUTCHours(Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0), 0);
  return BigInt(date.getTime()) * 1000n + BigInt((m[7] ?? '').padEnd(6, '0').slice(0, 6));
}

/** A value as CSV shows it: a string's text, anything else's JSON text; null stays null. */
function expectCsvCell(actual: string | null, expected: Exact, where: string): void {
  if (expected === null) return void expect(actual, where).toBeNull();
  expect(actual, where).not.toBeNull();
  if (typeof expected === 'string') return void expect(actual, where).toBe(expected);
  if (typeof expected === 'boolean') return void expect(actual, where).toBe(String(expected));
  if (isLosslessNumber(expected)) return void expect(actual, where).toBe(expected.value);
  expect(parseExact(actual!), where).toEqual(expected);
}

/** A value read back from a typed column (as text: see parquetRows), checked by the column's type. */
function expectTypedCell(type: string, actual: string | null, expected: Exact, where: string): void {
  if (expected === null) return void expect(actual, where).toBeNull();
  expect(actual, where).not.toBeNull();
  const a = actual!;
  if (type.endsWith(']')) {
    // to_json of the list: compared as JSON values (numbers digit for digit).
    return void expect(normalizeJson(parseExact(a)), where).toEqual(
      normalizeJson(expected, type.startsWith('DECIMAL')),
    );
  }
  if (/^(U?BIGINT|INTEGER|UINTEGER|SMALLINT|TINYINT)$/.test(type)) {
    return void expect(a, where).toBe((expected as LosslessNumber).value);
  }
  if (type.startsWith('DECIMAL')) {
    const e = isLosslessNumber(expected) ? expected.value : (expected as string);
    return void expect(normDecimal(a), where).toBe(normDecimal(e));
  }
  if (type === 'DOUBLE' || type === 'FLOAT') {
    const parsed = a === 'inf' ? Infinity : a === '-inf' ? -Infinity : a === 'nan' ? NaN : Number(a);
    return void expect(sameNumber(parsed, numberOf(expected)), `${where}: ${a} vs ${String(expected)}`).toBe(
      true,
    );
  }
  if (type === 'BOOLEAN') return void expect(a, where).toBe(String(expected));
  if (type === 'DATE') return void expect(a, where).toBe(expected);
  if (type.startsWith('TIMESTAMP')) return void expect(BigInt(a), where).toBe(micros(expected as string));
  if (type === 'BLOB') return void expect(a, where).toBe(expected);
  expectCsvCell(a, expected, where);
}

/**
 * Lossless numbers compared by value (1.50 and 1.5 alike), for lists read back through to_json; with
 * `decimals`, strings too (the contract writes decimals as strings, a typed list holds numbers).
 */
function normalizeJson(v: Exact, decimals = false): unknown {
  if (isLosslessNumber(v)) return { n: normDecimal(v.value) };
  if (decimals && typeof v === 'string') return { n: normDecimal(v) };
  if (Array.isArray(v)) return v.map((x) => normalizeJson(x, decimals));
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalizeJson(x, decimals)]));
  }
  return v;
}

// ---- independent readers ----

async function csvRows(
  bytes: Buffer,
  options: { header: boolean; delimiter: string },
): Promise<{
  names: string[];
  rows: (string | null)[][];
}> {
  const file = await toFile(bytes, 'x.csv');
  const reader =
    `read_csv(${sqlString(file)}, all_varchar = true, header = ${options.header}, ` +
    `delim = ${sqlString(options.delimiter)}, quote = '"', escape = '"', allow_quoted_nulls = false, ` +
    `strict_mode = true)`;
  const reply = await duck.runAndReadAll(`SELECT * FROM ${reader}`);
  return { names: reply.columnNames(), rows: reply.getRows() as (string | null)[][] };
}

/** Parquet read back by DuckDB: each column's type, and every value as text in a form per type. */
async function parquetRows(
  bytes: Buffer,
): Promise<{ types: Record<string, string>; rows: (string | null)[][] }> {
  const file = await toFile(bytes, 'x.parquet');
  const described = await duck.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${sqlString(file)})`);
  const columns = described.getRows().map(([name, type]) => ({ name: String(name), type: String(type) }));
  const expr = ({ name, type }: { name: string; type: string }) => {
    const c = `"${name.replaceAll('"', '""')}"`;
    if (type === 'BLOB') return `base64(${c})`;
    if (type.startsWith('TIMESTAMP')) return `epoch_us(${c})::VARCHAR`;
    if (type.endsWith(']')) return `to_json(${c})::VARCHAR`;
    return `${c}::VARCHAR`;
  };
  const reply = await duck.runAndReadAll(
    `SELECT ${columns.map(expr).join(', ')} FROM read_parquet(${sqlString(file)})`,
  );
  return {
    types: Object.fromEntries(columns.map((c) => [c.name, c.type])),
    rows: reply.getRows() as (string | null)[][],
  };
}

/** Arrow IPC read back by apache-arrow: every value compared from the column's own buffers. */
function expectArrow(bytes: Buffer, truth: Truth): Record<string, string> {
  const table = tableFromIPC(bytes);
  expect(table.schema.fields.map((f) => f.name)).toEqual(truth.fields);
  expect(table.numRows).toBe(truth.rows.length);
  let base = 0;
  for (const batch of table.batches) {
    truth.fields.forEach((name, i) => {
      const data = batch.data.children[i]!;
      const vector = batch.getChildAt(i)!;
      for (let r = 0; r < batch.numRows; r++) {
        const expected = truth.rows[base + r]![name]!;
        const where = `arrow row ${base + r} ${name}`;
        if (!data.getValid(r)) {
          expect(expected, where).toBeNull();
          continue;
        }
        expect(expected, where).not.toBeNull();
        expectArrowCell(data, vector, r, expected, where);
      }
    });
    base += batch.numRows;
  }
  return Object.fromEntries(table.schema.fields.map((f) => [f.name, String(f.type)]));
}

function expectArrowCell(data: Data, vector: Vector, r: number, expected: Exact, where: string): void {
  const type = data.type;
  const values = data.values as any;
  switch (type.typeId) {
    case Type.Int:
      return void expect(String(values[r]), where).toBe((expected as LosslessNumber).value);
    case Type.Decimal: {
      const text = decimalText(values as Uint32Array, r, (type as any).scale as number);
      const e = isLosslessNumber(expected) ? expected.value : (expected as string);
      return void expect(normDecimal(text), where).toBe(normDecimal(e));
    }
    case Type.Float:
      return void expect(sameNumber(values[r], numberOf(expected)), where).toBe(true);
    case Type.Bool:
      return void expect(vector.get(r), where).toBe(expected);
    case Type.Date:
      return void expect(BigInt(values[r]) * 86_400_000_000n, where).toBe(micros(expected as string));
    case Type.Timestamp:
      if ((expected as string).endsWith('Z')) expect((type as any).timezone, where).toBe('UTC');
      return void expect(values[r], where).toBe(micros(expected as string));
    case Type.Binary:
      return void expect(Buffer.from(vector.get(r) as Uint8Array).toString('base64'), where).toBe(expected);
    case Type.Utf8:
      return expectCsvCell(vector.get(r) as string, expected, where);
    case Type.List:
      return void expect(normalizeJson(parseExact(arrowJson(vector.get(r)))), where).toEqual(
        normalizeJson(expected, String(type).includes('Decimal')),
      );
    default:
      throw new Error(`${where}: unexpected Arrow type ${String(type)}`);
  }
}

/** Arrow's Decimal128 (little-endian 32-bit words, two's complement) as decimal text. */
function decimalText(words: Uint32Array, index: number, scale: number): string {
  let v = 0n;
  for (let w = 3; w >= 0; w--) v = (v << 32n) | BigInt(words[index * 4 + w]!);
  v = BigInt.asIntN(128, v);
  const abs = (v < 0n ? -v : v).toString().padStart(scale + 1, '0');
  return `${v < 0n ? '-' : ''}${abs.slice(0, abs.length - scale)}${scale ? '.' + abs.slice(-scale) : ''}`;
}

function arrowJson(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  const vector = v as Vector;
  if (vector.type?.typeId === Type.Decimal) {
    const data = vector.data[0]!;
    const items: string[] = [];
    for (let j = 0; j < vector.length; j++) {
      items.push(
        data.getValid(j) ? decimalText(data.values as Uint32Array, j, (vector.type as any).scale) : 'null',
      );
    }
    return `[${items.join(',')}]`;
  }
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : JSON.stringify(String(v));
  if (typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v);
  const list = v as Vector;
  const items: string[] = [];
  for (let j = 0; j < list.length; j++) items.push(arrowJson(list.get(j)));
  return `[${items.join(',')}]`;
}

/** Every format of one finished query, each read back and compared with GET's pages value by value. */
async function expectAllFormats(id: string, typedExpectations: Record<string, string> = {}): Promise<Truth> {
  const truth = await truthOf(id);
  const { fields, rows } = truth;

  // ndjson: each line the row object as GET has it.
  const ndjson = (await exported(id, 'format=ndjson')).toString('utf8');
  const lines = ndjson.split('\n');
  expect(lines.pop()).toBe('');
  expect(lines.map(parseExact)).toEqual(rows);

  // json: one array.
  expect(parseExact((await exported(id, 'format=json')).toString('utf8'))).toEqual(rows);

  // csv and tsv through DuckDB's reader.
  for (const [format, delimiter] of [
    ['csv', ','],
    ['tsv', '\t'],
  ] as const) {
    const csv = await csvRows(await exported(id, `format=${format}`), { header: true, delimiter });
    if (rows.length > 0) expect(csv.names).toEqual(fields);
    expect(csv.rows).toHaveLength(rows.length);
    csv.rows.forEach((row, r) =>
      fields.forEach((name, i) => expectCsvCell(row[i]!, rows[r]![name]!, `${format} row ${r} ${name}`)),
    );
  }

  // Parquet through DuckDB's reader: typed columns.
  const parquet = await parquetRows(await exported(id, 'format=parquet'));
  expect(Object.keys(parquet.types)).toEqual(fields);
  for (const [name, type] of Object.entries(typedExpectations)) {
    expect(parquet.types[name], `parquet type of ${name}`).toBe(type);
  }
  expect(parquet.rows).toHaveLength(rows.length);
  parquet.rows.forEach((row, r) =>
    fields.forEach((name, i) =>
      expectTypedCell(parquet.types[name]!, row[i]!, rows[r]![name]!, `parquet row ${r} ${name}`),
    ),
  );

  // Arrow through apache-arrow's reader.
  expectArrow(await exported(id, 'format=arrow'), truth);
  return truth;
}

async function runQuery(connectionId: string, sql: string, extra: Record<string, unknown> = {}) {
  const r = await server.request('POST', `/api/connections/${connectionId}/query`, {
    auth: admin(),
    body: { query: sql, ...extra },
  });
  expect(r.status, r.text).toBe(200);
  const done = await waitForQueryEnd(server, admin(), r.body.data.id, { waitSeconds: 10 });
  return done;
}

beforeAll(async () => {
  server = await startTestServer({ QRUN_PAGE_ROWS: '7' });
  scratch = await mkdtemp(path.join(tmpdir(), 'qrun-exports-test-'));
  duckInstance = await DuckDBInstance.create(':memory:', { threads: '1' });
  duck = await duckInstance.connect();
});

afterAll(async () => {
  duck?.closeSync();
  duckInstance?.closeSync();
  await server?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe.each(engineFixtures())('exports of $type', (fixture: EngineFixture) => {
  const values = VALUES[fixture.type]!;
  let connectionId: string;

  beforeAll(async () => {
    let fileDir: string | undefined;
    if (fixture.connector.capabilities.fileBased) {
      const me = await server.request('GET', '/api/me', { auth: admin() });
      fileDir = path.join(server.fileRoot, me.body.data.organization_id as string);
      await mkdir(fileDir, { mode: 0o700, recursive: true });
    }
    const { config } = await fixture.setup(fileDir);
    const created = await server.request('POST', '/api/connections', {
      auth: admin(),
      body: { name: `exports ${fixture.type}`, type: fixture.type, configuration: config },
    });
    expect(created.status, created.text).toBe(200);
    connectionId = created.body.data.id;
    for (const sql of values.setup ?? []) {
      const r = await runQuery(connectionId, sql);
      expect(r.body.data.status, r.text).toBe('done');
    }
  });

  afterAll(async () => {
    await fixture.teardown();
  });

  it('exports the value table (and a row of NULLs) in every format, value for value', async () => {
    const r = await runQuery(connectionId, withNullRow(values.sql), { page_rows: 1 });
    expect(r.body.data.status, r.text).toBe('done');
    const truth = await expectAllFormats(r.body.data.id, values.types);
    expect(truth.rows).toHaveLength(2);
    expect(truth.pages).toBe(2);
  });

  it('exports a result of many pages in order', async () => {
    const r = await runQuery(connectionId, fixture.sql.series(100));
    expect(r.body.data.status, r.text).toBe('done');
    const truth = await expectAllFormats(r.body.data.id);
    expect(truth.pages).toBe(15);
    expect(truth.rows.map((row) => (row['n'] as LosslessNumber).value)).toEqual(
      Array.from({ length: 100 }, (_, i) => String(i + 1)),
    );
  });
});

describe('export options, states and errors', () => {
  let connectionId: string;
  let id: string;

  beforeAll(async () => {
    connectionId = await createPostgresConnection(server, admin(), 'exports pg');
    const r = await runQuery(
      connectionId,
      `SELECT n::int8 AS id, 'row ' || n || CASE WHEN n % 5 = 0 THEN E', "quoted";\\r\\nline' ELSE '' END AS label,
         (n * 1.5)::numeric(20,6) AS amount, n / 7.0::float8 AS price,
         timestamptz '2024-01-01 00:00:00+00' + n * interval '61.5 second' AS at,
         CASE WHEN n % 3 = 0 THEN NULL ELSE n % 2 = 0 END AS flag
       FROM generate_series(1, 40) AS n ORDER BY n`,
    );
    expect(r.body.data.status, r.text).toBe('done');
    id = r.body.data.id;
  });

  it('typed columns of a multi-page PostgreSQL result', async () => {
    const truth = await expectAllFormats(id, {
      id: 'BIGINT',
      // PostgreSQL's schema says `numeric` without precision and scale: exact text.
      amount: 'VARCHAR',
      price: 'DOUBLE',
      at: 'TIMESTAMP WITH TIME ZONE',
      flag: 'BOOLEAN',
    });
    expect(truth.pages).toBe(6);
  });

  it('sets the download headers', async () => {
    const expected: Record<string, [string, string]> = {
      csv: ['text/csv; charset=utf-8; header=present', 'csv'],
      tsv: ['text/tab-separated-values; charset=utf-8', 'tsv'],
      ndjson: ['application/x-ndjson', 'ndjson'],
      json: ['application/json; charset=utf-8', 'json'],
      parquet: ['application/vnd.apache.parquet', 'parquet'],
      arrow: ['application/vnd.apache.arrow.stream', 'arrows'],
    };
    for (const [format, [type, extension]] of Object.entries(expected)) {
      const r = await download(id, `format=${format}`);
      expect(r.status, format).toBe(200);
      expect(r.headers.get('content-type'), format).toBe(type);
      expect(r.headers.get('content-disposition')).toBe(`attachment; filename="${id}.${extension}"`);
      expect(r.headers.get('content-encoding'), format).toBeNull();
    }
    const head = await server.request('HEAD', `/api/queries/${id}/export?format=parquet`, { auth: admin() });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-disposition')).toBe(`attachment; filename="${id}.parquet"`);
    expect(head.text).toBe('');
    const csv = (await exported(id, 'format=csv')).toString('utf8');
    expect(csv.startsWith('id,label,amount,price,at,flag\r\n1,row 1,1.500000,')).toBe(true);
    expect(csv).toContain('\r\n5,"row 5, ""quoted"";\r\nline",7.500000,');
    expect(csv).toContain(',\r\n');
  });

  it('gzips text formats when Accept-Encoding allows it, never the binary ones', async () => {
    for (const format of ['csv', 'tsv', 'ndjson', 'json']) {
      const plain = await exported(id, `format=${format}`);
      const r = await rawDownload(id, `format=${format}`, { 'accept-encoding': 'br;q=1, gzip;q=0.8' });
      expect(r.status).toBe(200);
      expect(r.headers['content-encoding'], format).toBe('gzip');
      expect(r.headers['vary']).toMatch(/accept-encoding/i);
      expect(gunzipSync(r.bytes).equals(plain), format).toBe(true);
      const refused = await rawDownload(id, `format=${format}`, { 'accept-encoding': 'gzip;q=0, br' });
      expect(refused.headers['content-encoding']).toBeUndefined();
      expect(refused.bytes.equals(plain)).toBe(true);
      const none = await rawDownload(id, `format=${format}`, {});
      expect(none.headers['content-encoding']).toBeUndefined();
    }
    for (const format of ['parquet', 'arrow']) {
      const r = await rawDownload(id, `format=${format}`, { 'accept-encoding': 'gzip' });
      expect(r.status).toBe(200);
      expect(r.headers['content-encoding'], format).toBeUndefined();
    }
  });

  it('header=false and delimiter', async () => {
    const truth = await truthOf(id);
    const bareResponse = await download(id, 'format=csv&header=false');
    expect(bareResponse.headers.get('content-type')).toBe('text/csv; charset=utf-8; header=absent');
    const bare = await exported(id, 'format=csv&header=false');
    expect(bare.toString('utf8').startsWith('1,row 1,')).toBe(true);
    const read = await csvRows(bare, { header: false, delimiter: ',' });
    expect(read.rows).toHaveLength(40);
    const semi = await exported(id, `format=csv&delimiter=${encodeURIComponent(';')}`);
    expect(semi.toString('utf8').startsWith('id;label;amount;price;at;flag\r\n')).toBe(true);
    const pipe = await exported(id, `format=tsv&delimiter=${encodeURIComponent('|')}&header=true`);
    for (const [bytes, delimiter] of [
      [semi, ';'],
      [pipe, '|'],
    ] as const) {
      const parsed = await csvRows(bytes, { header: true, delimiter });
      expect(parsed.names).toEqual(truth.fields);
      parsed.rows.forEach((row, r) =>
        truth.fields.forEach((name, i) =>
          expectCsvCell(row[i]!, truth.rows[r]![name]!, `${delimiter} ${r} ${name}`),
        ),
      );
    }
  });

  it('answers 400 for every bad parameter, naming it', async () => {
    const cases: [string, string][] = [
      ['', 'format_required'],
      ['format=', 'format_required'],
      ['format=xlsx', 'invalid_format'],
      ['format=CSV', 'invalid_format'],
      ['format=csv&header=yes', 'invalid_header'],
      ['format=csv&header=', 'invalid_header'],
      ['format=csv&delimiter=', 'invalid_delimiter'],
      ['format=csv&delimiter=%3B%3B', 'invalid_delimiter'],
      ['format=csv&delimiter=%22', 'invalid_delimiter'],
      ['format=csv&delimiter=%0D', 'invalid_delimiter'],
      ['format=csv&delimiter=%0A', 'invalid_delimiter'],
      ['format=json&header=false', 'invalid_header'],
      ['format=parquet&delimiter=%3B', 'invalid_delimiter'],
    ];
    for (const [query, key] of cases) {
      const r = await server.request('GET', `/api/queries/${id}/export?${query}`, { auth: admin() });
      expect(r.status, query).toBe(400);
      expect(r.body.key, query).toBe(key);
      expect(r.body.message, query).toMatch(/\w+ \w+/);
      expect(r.body.metadata?.field ?? '', query).toMatch(/^query\./);
    }
    const badId = await server.request('GET', '/api/queries/not-a-uuid/export?format=csv', { auth: admin() });
    expect(badId.status).toBe(400);
    expect(badId.body.key).toBe('invalid_id');
  });

  it('401 without a key; 404 for an unknown query and for another organization’s', async () => {
    const anonymous = await server.request('GET', `/api/queries/${id}/export?format=csv`);
    expect(anonymous.status).toBe(401);
    const unknown = await server.request(
      'GET',
      '/api/queries/00000000-0000-4000-8000-000000000000/export?format=csv',
      { auth: admin() },
    );
    expect(unknown.status).toBe(404);
    expect(unknown.body.key).toBe('not_found');
    const other = await createTenant(server, 'exports-other');
    for (const format of ['csv', 'parquet']) {
      const r = await server.request('GET', `/api/queries/${id}/export?format=${format}`, {
        auth: other.admin,
      });
      expect(r.status).toBe(404);
      expect(r.body.key).toBe('not_found');
    }
  });

  it('409 while running and for a failed query, with what to do', async () => {
    const slow = await submitQuery(server, admin(), connectionId, 'SELECT pg_sleep(30)');
    const running = await server.request('GET', `/api/queries/${slow}/export?format=csv`, { auth: admin() });
    expect(running.status).toBe(409);
    expect(running.body.key).toBe('query_not_done');
    expect(running.body.message).toMatch(/still (created|running).*wait/);
    await server.request('POST', `/api/queries/${slow}/cancel`, { auth: admin() });

    const failed = await runQuery(connectionId, 'SELECT 1 / 0');
    expect(failed.body.data.status).toBe('failed');
    const r = await server.request('GET', `/api/queries/${failed.body.data.id}/export?format=ndjson`, {
      auth: admin(),
    });
    expect(r.status).toBe(409);
    expect(r.body.key).toBe('query_failed');
    expect(r.body.message).toContain('division by zero');
  });

  it('404 expired once the result is gone', async () => {
    const r = await runQuery(connectionId, 'SELECT 1 AS one');
    const gone = r.body.data.id as string;
    await server.qrun.results.deleteResult(gone);
    const e = await server.request('GET', `/api/queries/${gone}/export?format=csv`, { auth: admin() });
    expect(e.status).toBe(404);
    expect(e.body.key).toBe('expired');
  });

  it('cuts the connection when the result goes away in the middle of a download', async () => {
    // About 8.5 MB of CSV in 4,000 pages: more than the socket buffers hold, so the server is still reading
    // pages when they are deleted.
    const r = await runQuery(
      connectionId,
      'SELECT n, md5(n::text) AS hash FROM generate_series(1, 200000) AS n',
      { page_rows: 50 },
    );
    const big = r.body.data.id as string;
    const res = await fetch(`${server.url}/api/queries/${big}/export?format=csv`, {
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    expect((await reader.read()).done).toBe(false);
    await server.qrun.results.deleteResult(big);
    // Reading on fails (the chunked body never ends properly) instead of ending as if it were complete.
    await expect(
      (async () => {
        for (;;) if ((await reader.read()).done) return 'ended cleanly';
      })(),
    ).rejects.toThrow();
    // The pages are gone: a new download answers 404 expired before any byte.
    const again = await server.request('GET', `/api/queries/${big}/export?format=ndjson`, { auth: admin() });
    expect(again.status).toBe(404);
    expect(again.body.key).toBe('expired');
  });

  it('a result without rows or columns', async () => {
    const none = await runQuery(connectionId, 'SELECT 1 AS one WHERE false');
    const noneId = none.body.data.id as string;
    expect((await exported(noneId, 'format=csv')).toString()).toBe('one\r\n');
    expect((await exported(noneId, 'format=ndjson')).toString()).toBe('');
    expect(JSON.parse((await exported(noneId, 'format=json')).toString())).toEqual([]);
    expect(tableFromIPC(await exported(noneId, 'format=arrow')).numRows).toBe(0);
    expect((await parquetRows(await exported(noneId, 'format=parquet'))).rows).toEqual([]);

    const statement = await runQuery(connectionId, 'SET search_path = public');
    const r = await server.request('GET', `/api/queries/${statement.body.data.id}/export?format=parquet`, {
      auth: admin(),
    });
    expect(r.status).toBe(409);
    expect(r.body.key).toBe('export_no_columns');
    expect((await exported(statement.body.data.id, 'format=csv')).toString()).toBe('');
  });
});
