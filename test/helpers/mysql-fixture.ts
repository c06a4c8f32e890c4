import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { JsonText } from '../../src/connectors/connector.js';
import { mysqlConnector } from '../../src/connectors/mysql/mysql-connector.js';
import { EgressPolicy } from '../../src/net/egress-policy.js';
import type { EngineFixture, ValueCase } from './engine-fixture.js';

/** The machine's MariaDB: root with an empty password on 127.0.0.1. */
const SERVER = { host: '127.0.0.1', port: 3306, user: 'root' };

const suffix = randomBytes(4).toString('hex');
const database = `qrun_conn_${suffix}`;
const user = `qrun_t_${suffix}`;
const userPassword = `pw-${suffix}-right`;

async function withAdmin<T>(fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const c = await mysql.createConnection({ ...SERVER, multipleStatements: true });
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** One row of every type, read back by the value cases below. */
const TYPES_TABLE = `
  CREATE TABLE qrun_types (
    ti TINYINT, si SMALLINT, mi MEDIUMINT, i INT, ui INT UNSIGNED, bi BIGINT, ubi BIGINT UNSIGNED,
    f FLOAT, d DOUBLE, dc DECIMAL(30,6),
    dt DATE, dtm DATETIME, dtm6 DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME, tm2 TIME(2), y YEAR,
    j JSON, bl BLOB, vb VARBINARY(8), bn BINARY(2),
    tx TEXT, vc VARCHAR(20), ch CHAR(3), e ENUM('a','b'), st SET('x','y'), bt BIT(10), bt64 BIT(64)
  );
  SET time_zone = '+02:00';
  INSERT INTO qrun_types VALUES (
    -128, 32767, -8388608, 2147483647, 4294967295, -9223372036854775808, 18446744073709551615,
    1.1, 0.1, '12345678901234567890.000001',
    '2026-01-02', '2026-01-02 03:04:05', '2026-01-02 03:04:05.123456', '2026-01-01 12:00:00.123', '-838:59:59', '12:00:00', 2026,
    '{"a": [1, 2.50, 12345678901234567890]}', x'00ff10', x'0102', x'0a0b',
    'héllo', 'it''s', 'ab', 'b', 'x,y', b'1010101010', ~0
  )`;

const valueCases: ValueCase[] = [
  { name: 'null', sql: 'SELECT NULL AS v', expected: [null], types: ['NULL'] },
  {
    name: 'integers: up to 32 bits as numbers, BIGINT (signed or not) as exact bigints',
    sql: 'SELECT ti, si, mi, i, ui, bi, ubi FROM qrun_types',
    expected: [-128, 32767, -8388608, 2147483647, 4294967295, -9223372036854775808n, 18446744073709551615n],
    types: ['TINYINT', 'SMALLINT', 'MEDIUMINT', 'INT', 'INT UNSIGNED', 'BIGINT', 'BIGINT UNSIGNED'],
  },
  {
    name: 'booleans are TINYINT(1) numbers in MySQL',
    sql: 'SELECT TRUE AS t, FALSE AS f',
    expected: [1, 0],
  },
  {
    name: 'FLOAT and DOUBLE are numbers',
    sql: 'SELECT f, d, d + 0.2e0 AS s FROM qrun_types',
    expected: [1.1, 0.1, 0.30000000000000004],
    types: ['FLOAT', 'DOUBLE', 'DOUBLE'],
  },
  {
    name: 'DECIMAL is the exact decimal text',
    sql: 'SELECT dc, CAST(0.10 AS DECIMAL(5,2)) AS c FROM qrun_types',
    expected: ['12345678901234567890.000001', '0.10'],
    types: ['DECIMAL', 'DECIMAL'],
  },
  {
    name: 'dates, DATETIME with T, TIMESTAMP in UTC with Z, TIME as text, YEAR as a number',
    sql: 'SELECT dt, dtm, dtm6, ts, tm, tm2, y FROM qrun_types',
    expected: [
      '2026-01-02',
      '2026-01-02T03:04:05',
      '2026-01-02T03:04:05.123456',
      '2026-01-01T10:00:00.123Z',
      '-838:59:59',
      '12:00:00.00',
      2026,
    ],
    types: ['DATE', 'DATETIME', 'DATETIME', 'TIMESTAMP', 'TIME', 'TIME', 'YEAR'],
  },
  {
    // MariaDB stores JSON as LONGTEXT; its extended metadata still marks the column as JSON.
    name: 'JSON is the JSON text itself',
    sql: "SELECT j, JSON_OBJECT('k', 1) AS o FROM qrun_types",
    expected: [new JsonText('{"a": [1, 2.50, 12345678901234567890]}'), new JsonText('{"k": 1}')],
    types: ['JSON', 'JSON'],
  },
  {
    name: 'binary strings and BLOBs are bytes',
    sql: 'SELECT bl, vb, bn FROM qrun_types',
    expected: [new Uint8Array([0, 255, 16]), new Uint8Array([1, 2]), new Uint8Array([10, 11])],
    types: ['BLOB', 'VARBINARY', 'BINARY'],
  },
  {
    name: 'TEXT, VARCHAR, CHAR, ENUM and SET are strings',
    sql: 'SELECT tx, vc, ch, e, st FROM qrun_types',
    expected: ['héllo', "it's", 'ab', 'b', 'x,y'],
    types: ['TEXT', 'VARCHAR', 'CHAR', 'ENUM', 'SET'],
  },
  {
    name: 'BIT is its unsigned integer value',
    sql: 'SELECT bt, bt64 FROM qrun_types',
    expected: [682, 18446744073709551615n],
    types: ['BIT', 'BIT'],
  },
];

export const mysqlFixture: EngineFixture = {
  type: 'mysql',
  connector: mysqlConnector,
  async setup() {
    await withAdmin(async (c) => {
      await c.query(`CREATE DATABASE ${database}`);
      await c.query(`CREATE USER '${user}'@'%' IDENTIFIED BY '${userPassword}'`);
      await c.query(`USE ${database}`);
      await c.query(TYPES_TABLE);
    });
    return {
      // Polytomic's names for the mysql type.
      config: {
        hostname: SERVER.host,
        port: SERVER.port,
        dbname: database,
        account: SERVER.user,
        ssl: false,
      },
      context: { fileDir: '/nonexistent', egress: new EgressPolicy() },
    };
  },
  async teardown() {
    await withAdmin(async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${database}`);
      await c.query(`DROP USER IF EXISTS '${user}'@'%'`);
    });
  },
  badCredentials() {
    const secret = `pw-${suffix}-wrong-SeCrEt`;
    return {
      config: {
        hostname: SERVER.host,
        port: SERVER.port,
        dbname: database,
        account: user,
        passwd: secret,
        ssl: false,
      },
      secret,
    };
  },
  sql: {
    // Not a recursive CTE: MariaDB stops those at 1001 rows (cte_max_recursion_depth).
    series: (n) => `SELECT seq AS n FROM seq_1_to_${n} ORDER BY seq`,
    slow: (seconds) => `SELECT SLEEP(${seconds}) AS slept`,
    twoParameters: 'SELECT ? AS a, ? AS b',
  },
  valueCases,
  async runningStatements(marker) {
    return withAdmin(async (c) => {
      const [rows] = await c.query<mysql.RowDataPacket[]>(
        'SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND INSTR(INFO, ?) > 0',
        [marker],
      );
      return Number(rows[0]?.n ?? 0);
    });
  },
};
