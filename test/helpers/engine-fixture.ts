import {
  JsonText,
  type CellValue,
  type Connector,
  type ConnectorContext,
} from '../../src/connectors/connector.js';

/**
 * A CellValue in a form `toEqual` compares as the JSON output would: integers by value whether bigint or
 * JSON digits, a JsonText holding a JSON string as that string, other JsonText by its text, bytes as a list.
 */
export function comparable(value: CellValue): unknown {
  if (typeof value === 'bigint') return { integer: value.toString() };
  if (value instanceof JsonText) {
    if (value.text.startsWith('"')) return JSON.parse(value.text) as string;
    return /^-?\d+$/.test(value.text) ? { integer: BigInt(value.text).toString() } : { json: value.text };
  }
  if (value instanceof Uint8Array) return { bytes: Array.from(value) };
  if (Array.isArray(value)) return value.map(comparable);
  return value;
}

/** One row of one query and the exact CellValues (and source type names) the connector must yield for it. */
export interface ValueCase {
  name: string;
  sql: string;
  expected: CellValue[];
  /** Expected ColumnInfo.type per column, where the test wants to pin it. */
  types?: string[];
}

/**
 * What the shared connector suite needs to know about one engine (like Kysely's dialect loop):
 * a new engine adds one fixture and gets every test in the suite for free.
 */
export interface EngineFixture {
  /** The connector type id, e.g. `postgresql`. */
  type: string;
  connector: Connector;
  /**
   * Creates this test file's own database (or file) and returns a configuration that reaches it. File
   * engines put their file in `fileDir` when given (an organization's directory of a test server),
   * else in a temporary directory of their own.
   */
  setup(fileDir?: string): Promise<{ config: Record<string, unknown>; context: ConnectorContext }>;
  /** Drops what setup created. */
  teardown(): Promise<void>;
  /** A configuration that fails to authenticate, and the secret it carries; undefined for file engines. */
  badCredentials?(): { config: Record<string, unknown>; secret: string };
  sql: {
    /** A query yielding n rows, one column `n` holding 1..n in order. */
    series(n: number): string;
    /** A statement that runs for about `seconds` seconds (for cancel tests). */
    slow(seconds: number): string;
    /** A statement with two positional parameters echoed back as columns `a`, `b`. */
    twoParameters: string;
  };
  /** The engine's side of CONTRACT.md's value table (every type the engine has). */
  valueCases: ValueCase[];
  /**
   * For engines with a server: how many statements containing `marker` are running on the server now
   * (pg_stat_activity, SHOW PROCESSLIST), to prove a cancel really stopped the statement.
   */
  runningStatements?(marker: string): Promise<number>;
  /**
   * For engines without a server (and so without runningStatements): the CPU time (ms) spent where the
   * engine runs statements (this process for DuckDB, the statement processes for SQLite), so a test can
   * see that a statement is really running before it aborts it.
   */
  engineCpuMs?(): number;
  /**
   * Resolves once the engine's own background work has settled (SQLite's spare processes have started), so
   * that engineCpuMs from then on grows only with the statement's work. Call it after starting the statement.
   */
  quiet?(): Promise<void>;
}
