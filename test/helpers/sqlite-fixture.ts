import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sqliteConnector } from '../../src/connectors/sqlite/sqlite-connector.js';
import { sqliteProcesses } from '../../src/connectors/sqlite/sqlite-processes.js';
import { EgressPolicy } from '../../src/net/egress-policy.js';
import { childProcesses } from './cpu.js';
import type { EngineFixture, ValueCase } from './engine-fixture.js';
import { waitUntil } from './wait.js';

let root: string | undefined;

/** The file every fixture database gets: one table whose columns carry declared types. */
function createDatabase(file: string): void {
  const db = new Database(file);
  try {
    db.exec(`
      CREATE TABLE typed (
        flag BOOLEAN, whole INTEGER, big BIGINT, fraction REAL, price DECIMAL(10,2),
        label VARCHAR(10), body TEXT, data BLOB, created DATETIME, untyped
      );
      INSERT INTO typed VALUES (
        TRUE, 42, 9223372036854775807, 2.5, 12.5,
        'ten chars!', 'héllo 😀', x'CAFE', '2024-01-02 03:04:05', 7
      );
    `);
  } finally {
    db.close();
  }
}

// SQLite has five storage classes; everything else (boolean, dates, json, decimal) is stored as one of them.
const valueCases: ValueCase[] = [
  {
    name: 'integers are exact bigints at the 64-bit limits',
    sql: 'SELECT 9223372036854775807 AS max, -9223372036854775808 AS min, 0 AS zero, 9007199254740993 AS above_double',
    expected: [9223372036854775807n, -9223372036854775808n, 0n, 9007199254740993n],
    types: ['INTEGER', 'INTEGER', 'INTEGER', 'INTEGER'],
  },
  {
    name: 'reals are numbers, infinities included',
    sql: 'SELECT 1.5 AS a, -0.25 AS b, 1e308 AS c, 9e999 AS inf, -9e999 AS ninf',
    expected: [1.5, -0.25, 1e308, Infinity, -Infinity],
    types: ['REAL', 'REAL', 'REAL', 'REAL', 'REAL'],
  },
  {
    name: 'unicode text',
    sql: "SELECT 'héllo wörld 😀 日本語' AS t, '' AS empty",
    expected: ['héllo wörld 😀 日本語', ''],
    types: ['TEXT', 'TEXT'],
  },
  {
    name: 'blobs are bytes',
    sql: "SELECT x'DEADBEEF00' AS b, x'' AS empty",
    expected: [new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x00]), new Uint8Array([])],
    types: ['BLOB', 'BLOB'],
  },
  {
    name: 'null',
    sql: 'SELECT NULL AS n',
    expected: [null],
    types: ['NULL'],
  },
  {
    name: 'dates and json are text in SQLite',
    sql: "SELECT date('2024-02-29') AS d, datetime('2024-01-02 03:04:05') AS ts, json_object('a', 1, 'b', json_array(1, 2)) AS j",
    expected: ['2024-02-29', '2024-01-02 03:04:05', '{"a":1,"b":[1,2]}'],
    types: ['TEXT', 'TEXT', 'TEXT'],
  },
  {
    name: 'declared column types are reported; values keep their storage class',
    sql: 'SELECT * FROM typed',
    expected: [
      1n,
      42n,
      9223372036854775807n,
      2.5,
      12.5,
      'ten chars!',
      'héllo 😀',
      new Uint8Array([0xca, 0xfe]),
      '2024-01-02 03:04:05',
      7n,
    ],
    types: [
      'BOOLEAN',
      'INTEGER',
      'BIGINT',
      'REAL',
      'DECIMAL(10,2)',
      'VARCHAR(10)',
      'TEXT',
      'BLOB',
      'DATETIME',
      'INTEGER',
    ],
  },
];

export const sqliteFixture: EngineFixture = {
  type: 'sqlite',
  connector: sqliteConnector,
  async setup(fileDir) {
    // A fresh directory (mkdtemp: mode 0700, like an organization's) stands for the organization's.
    root = fileDir ?? (await mkdtemp(join(tmpdir(), 'qrun-sqlite-')));
    createDatabase(join(root, 'test.sqlite'));
    // Writable: the shared suites create and drop tables.
    return {
      config: { path: 'test.sqlite', read_only: false },
      context: { fileDir: root, egress: new EgressPolicy() },
    };
  },
  async teardown() {
    if (root) await rm(root, { recursive: true, force: true });
    root = undefined;
  },
  sql: {
    series: (n) =>
      `WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${n}) SELECT n FROM s`,
    // Counting in a recursive CTE runs at roughly 6 million rows a second on one core.
    slow: (seconds) =>
      `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${Math.ceil(seconds * 10_000_000)}) SELECT count(*) AS n FROM c`,
    twoParameters: 'SELECT ? AS a, ? AS b',
  },
  valueCases,
  // Each statement runs in a child process of its own (and dies with its stream); the spares waiting
  // for a statement are not counted.
  engineCpuMs: () => busySqliteWorkers().reduce((sum, child) => sum + child.cpuMs, 0),
  quiet: async () => {
    await waitUntil('the SQLite spare processes to start', () => sqliteProcesses.settled);
  },
};

/** This process's SQLite worker processes that run (or ran) a statement: not the spares still waiting for one. */
export function busySqliteWorkers(): ReturnType<typeof childProcesses> {
  const waiting = sqliteProcesses.waitingPids;
  return childProcesses().filter(
    (child) => child.command.includes('sqlite-worker') && !waiting.includes(child.pid),
  );
}
