import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { JsonText } from '../../src/connectors/connector.js';
import { duckdbConnector } from '../../src/connectors/duckdb/duckdb-connector.js';
import { EgressPolicy } from '../../src/net/egress-policy.js';
import { ownCpuMs } from './cpu.js';
import type { EngineFixture, ValueCase } from './engine-fixture.js';

let root: string | undefined;

const valueCases: ValueCase[] = [
  {
    name: 'booleans',
    sql: 'SELECT true AS t, false AS f',
    expected: [true, false],
    types: ['BOOLEAN', 'BOOLEAN'],
  },
  {
    name: 'integers up to 32 bits are numbers',
    sql: 'SELECT (-128)::TINYINT AS a, (-32768)::SMALLINT AS b, 2147483647::INTEGER AS c, 255::UTINYINT AS d, 65535::USMALLINT AS e, 4294967295::UINTEGER AS f',
    expected: [-128, -32768, 2147483647, 255, 65535, 4294967295],
    types: ['TINYINT', 'SMALLINT', 'INTEGER', 'UTINYINT', 'USMALLINT', 'UINTEGER'],
  },
  {
    name: 'wider integers are exact bigints',
    sql: `SELECT 9223372036854775807::BIGINT AS a, (-9223372036854775808)::BIGINT AS b, 9007199254740993::BIGINT AS c,
      18446744073709551615::UBIGINT AS d, 170141183460469231731687303715884105727::HUGEINT AS e,
      (-170141183460469231731687303715884105728)::HUGEINT AS f, 340282366920938463463374607431768211455::UHUGEINT AS g`,
    expected: [
      9223372036854775807n,
      -9223372036854775808n,
      9007199254740993n,
      18446744073709551615n,
      170141183460469231731687303715884105727n,
      -170141183460469231731687303715884105728n,
      340282366920938463463374607431768211455n,
    ],
    types: ['BIGINT', 'BIGINT', 'BIGINT', 'UBIGINT', 'HUGEINT', 'HUGEINT', 'UHUGEINT'],
  },
  {
    name: 'floats and doubles are numbers, NaN and infinities included',
    sql: "SELECT 1.5::DOUBLE AS a, 0.1::FLOAT AS b, 'NaN'::DOUBLE AS c, 'Infinity'::DOUBLE AS d, '-Infinity'::FLOAT AS e, 1e308::DOUBLE AS f",
    expected: [1.5, 0.1, NaN, Infinity, -Infinity, 1e308],
    types: ['DOUBLE', 'FLOAT', 'DOUBLE', 'DOUBLE', 'FLOAT', 'DOUBLE'],
  },
  {
    name: 'decimals are exact strings at their scale',
    sql: `SELECT 12345678901234.567890::DECIMAL(20,6) AS a, 12345678901234567890.000001::DECIMAL(38,6) AS b,
      12345678901234567890123456789012.123456::DECIMAL(38,6) AS c, -0.50::DECIMAL(4,2) AS d,
      0.000001::DECIMAL(18,6) AS e, 123::DECIMAL(18,0) AS f, 1234567.89::DECIMAL(9,2) AS g`,
    expected: [
      '12345678901234.567890',
      '12345678901234567890.000001',
      '12345678901234567890123456789012.123456',
      '-0.50',
      '0.000001',
      '123',
      '1234567.89',
    ],
    types: [
      'DECIMAL(20,6)',
      'DECIMAL(38,6)',
      'DECIMAL(38,6)',
      'DECIMAL(4,2)',
      'DECIMAL(18,6)',
      'DECIMAL(18,0)',
      'DECIMAL(9,2)',
    ],
  },
  {
    name: 'text, uuid and enum are strings',
    sql: "SELECT 'héllo wörld 😀 日本語'::VARCHAR AS t, '550e8400-e29b-41d4-a716-446655440000'::UUID AS u, 'b'::ENUM('a', 'b') AS e",
    expected: ['héllo wörld 😀 日本語', '550e8400-e29b-41d4-a716-446655440000', 'b'],
    types: ['VARCHAR', 'UUID', "ENUM('a', 'b')"],
  },
  {
    name: 'dates',
    sql: "SELECT DATE '2024-02-29' AS d, DATE '0044-03-15' AS old, 'infinity'::DATE AS inf",
    expected: ['2024-02-29', '0044-03-15', 'infinity'],
    types: ['DATE', 'DATE', 'DATE'],
  },
  {
    name: 'timestamps without time zone',
    sql: `SELECT TIMESTAMP '2024-01-02 03:04:05.123456' AS a, TIMESTAMP '2024-01-02 03:04:05' AS b,
      TIMESTAMP '1969-12-31 23:59:59.999999' AS c, TIMESTAMP_S '2024-01-02 03:04:05' AS d,
      TIMESTAMP_MS '2024-01-02 03:04:05.123' AS e, TIMESTAMP_NS '2024-01-02 03:04:05.123456789' AS f,
      'infinity'::TIMESTAMP AS g`,
    expected: [
      '2024-01-02T03:04:05.123456',
      '2024-01-02T03:04:05',
      '1969-12-31T23:59:59.999999',
      '2024-01-02T03:04:05',
      '2024-01-02T03:04:05.123',
      '2024-01-02T03:04:05.123456789',
      'infinity',
    ],
    types: [
      'TIMESTAMP',
      'TIMESTAMP',
      'TIMESTAMP',
      'TIMESTAMP_S',
      'TIMESTAMP_MS',
      'TIMESTAMP_NS',
      'TIMESTAMP',
    ],
  },
  {
    name: 'timestamps with time zone are UTC with Z',
    sql: "SELECT TIMESTAMPTZ '2024-01-02 03:04:05.5+02' AS a, TIMESTAMPTZ '2024-06-30 23:00:00-05:30' AS b",
    expected: ['2024-01-02T01:04:05.5Z', '2024-07-01T04:30:00Z'],
    types: ['TIMESTAMP WITH TIME ZONE', 'TIMESTAMP WITH TIME ZONE'],
  },
  {
    name: 'time and interval are DuckDB’s text',
    sql: "SELECT TIME '12:34:56.789' AS t, INTERVAL 1 YEAR + INTERVAL 2 MONTH + INTERVAL 3 DAY + INTERVAL '04:05:06.5' AS i, INTERVAL '-1 day' AS n",
    expected: ['12:34:56.789', '1 year 2 months 3 days 04:05:06.5', '-1 day'],
    types: ['TIME', 'INTERVAL', 'INTERVAL'],
  },
  {
    name: 'blobs are bytes',
    sql: "SELECT '\\xDE\\xAD\\xBE\\xEF\\x00'::BLOB AS b, ''::BLOB AS empty",
    expected: [new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x00]), new Uint8Array([])],
    types: ['BLOB', 'BLOB'],
  },
  {
    name: 'lists and arrays map element-wise',
    sql: `SELECT [1, 2, NULL] AS a, [[1, 2], [3]] AS b, [9223372036854775807]::BIGINT[] AS c, ['x', 'ü😀'] AS d,
      [1.50]::DECIMAL(4,2)[] AS e, [TIMESTAMPTZ '2024-01-02 03:04:05+00'] AS f, [1, 2]::INTEGER[2] AS g, []::INTEGER[] AS h`,
    expected: [
      [1, 2, null],
      [[1, 2], [3]],
      [9223372036854775807n],
      ['x', 'ü😀'],
      ['1.50'],
      ['2024-01-02T03:04:05Z'],
      [1, 2],
      [],
    ],
    types: [
      'INTEGER[]',
      'INTEGER[][]',
      'BIGINT[]',
      'VARCHAR[]',
      'DECIMAL(4,2)[]',
      'TIMESTAMP WITH TIME ZONE[]',
      'INTEGER[2]',
      'INTEGER[]',
    ],
  },
  {
    name: 'structs and maps are JSON objects',
    sql: "SELECT {'a': 1, 'b': 'x', 'c': [9223372036854775807::BIGINT], 'd': NULL::INTEGER, 'e': 'NaN'::DOUBLE} AS s, MAP {'k': 1.25::DECIMAL(4,2), 'l': NULL} AS m, MAP {1: 'one'} AS n",
    expected: [
      new JsonText('{"a":1,"b":"x","c":[9223372036854775807],"d":null,"e":"NaN"}'),
      new JsonText('{"k":"1.25","l":null}'),
      new JsonText('{"1":"one"}'),
    ],
    types: [
      'STRUCT("a" INTEGER, "b" VARCHAR, "c" BIGINT[], "d" INTEGER, "e" DOUBLE)',
      'MAP(VARCHAR, DECIMAL(4,2))',
      'MAP(INTEGER, VARCHAR)',
    ],
  },
  {
    name: 'json is nested JSON',
    sql: `SELECT '{"x": [1, 2], "y": null}'::JSON AS j, json_object('big', 9223372036854775807) AS o`,
    expected: [new JsonText('{"x": [1, 2], "y": null}'), new JsonText('{"big":9223372036854775807}')],
    types: ['JSON', 'JSON'],
  },
  {
    name: 'null',
    sql: 'SELECT NULL::INTEGER AS n, NULL AS untyped',
    expected: [null, null],
    types: ['INTEGER', 'INTEGER'],
  },
];

export const duckdbFixture: EngineFixture = {
  type: 'duckdb',
  connector: duckdbConnector,
  async setup(fileDir) {
    // A fresh directory (mkdtemp: mode 0700, like an organization's) stands for the organization's.
    root = fileDir ?? (await mkdtemp(join(tmpdir(), 'qrun-duckdb-')));
    // The connector refuses missing files, so create an empty database first.
    const instance = await DuckDBInstance.create(join(root, 'test.duckdb'));
    instance.closeSync();
    // Writable: the shared suites create and drop tables.
    return {
      config: { path: 'test.duckdb', read_only: false },
      context: { fileDir: root, egress: new EgressPolicy() },
    };
  },
  async teardown() {
    if (root) await rm(root, { recursive: true, force: true });
    root = undefined;
  },
  sql: {
    series: (n) => `SELECT (range + 1)::INTEGER AS n FROM range(${n})`,
    // About 10^8 pairs a second on two cores; the cancel tests stop it long before it ends.
    slow: (seconds) =>
      `SELECT count(*) AS n FROM range(${Math.ceil(seconds * 2000)}) a, range(100000) b WHERE (a.range * b.range) % 7 = 3`,
    twoParameters: 'SELECT ? AS a, ? AS b',
  },
  valueCases,
  // DuckDB runs in this process's threads; the test itself only waits meanwhile.
  engineCpuMs: ownCpuMs,
};
