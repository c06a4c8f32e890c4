import type { TObject } from 'typebox';
import type { EgressPolicy, EgressTarget } from '../net/egress-policy.js';
import type { WarmSessionSlot } from './warm-sessions.js';

/**
 * The one small interface every database engine implements (one folder per engine, the same file set:
 * see registry.ts). Engine differences are capability flags, not subclasses.
 *
 * Two views of a connector:
 * - `Engine<C>` is what an engine writes, typed by its configuration `C` (the Static of its TypeBox
 *   schema, e.g. `Engine<PgConfig>`).
 * - `Connector` is what the rest of qrun holds (the registry, the services, the query runner): every
 *   engine alike, whatever its configuration type. `defineConnector(schema, engine)` (config-schema.ts)
 *   makes one of the other: its methods check a configuration against the schema, which narrows it to
 *   `C`, before the engine sees it. So no configuration is ever cast to an engine's type.
 *
 * Values: a connector hands rows over as `CellValue`s already in their exact form (see below), so the
 * JSON encoder never has to guess a type and never loses a digit.
 *
 * This module holds types and three small classes only: the SQLite child process imports it.
 */

/** How GET /api/connection_types lists one configuration field (derived from the connector's schema). */
export type ConfigFieldType = 'string' | 'integer' | 'boolean';

export interface ConfigField {
  name: string;
  type: ConfigFieldType;
  /** Must be sent: neither optional nor with a default. */
  required: boolean;
  secret: boolean;
  default?: string | number | boolean;
  description: string;
  /**
   * Part of where the connection goes (host, port, database, user, TLS). A stored secret is only kept
   * for the same destination: changing one of these needs the secret sent again.
   */
  target?: boolean;
}

export interface ConnectorCapabilities {
  /**
   * How positional parameters are written in the SQL: `$1, $2` or `?`. Listed by GET
   * /api/connection_types; the connector suite runs a query written that way.
   */
  placeholders: 'dollar' | 'question';
  /**
   * The configuration names a file in the organization's directory rather than a network host: no
   * egress check (ConnectionService), and the test suites put the file in that directory.
   */
  fileBased: boolean;
}

/** A configuration as stored and passed around outside its engine: checked by the engine's schema on entry. */
export type ConnectorConfig = Readonly<Record<string, unknown>>;

/** Already-valid JSON text spliced into the output as is: exact integers, exact floats, json columns. */
export class JsonText {
  constructor(readonly text: string) {}
}

/**
 * What a connector yields per cell, mapped by CONTRACT.md's value table:
 * - null; boolean;
 * - number: a double (NaN/±Infinity allowed; the encoder writes them as strings);
 * - bigint: an integer of any width, written digit for digit;
 * - string: text, and every type the contract renders as a string (numeric, date, time, timestamp, uuid, interval…);
 * - Uint8Array: binary, written as base64;
 * - JsonText: JSON text to splice in unchanged (json/jsonb values, integer digits given as text by a driver,
 *   or a quoted string the connector knows needs no escaping: it skips the encoder's scan);
 * - CellValue[]: arrays.
 */
export type CellValue = null | boolean | number | bigint | string | Uint8Array | JsonText | CellValue[];

/** A scalar bound to `$n` / `?`. Never spliced into the SQL text. */
export type ParameterValue = null | boolean | number | string;

export interface ColumnInfo {
  /** The name the database gave the column (duplicates are resolved later, by the encoder). */
  name: string;
  /** The source type's name as the database spells it (`int8`, `numeric`, `BIGINT UNSIGNED`, `TIMESTAMP WITH TIME ZONE`). */
  type: string;
}

export interface QueryStream {
  /** Empty for statements that return no rows (INSERT, DDL, SET). */
  columns: ColumnInfo[];
  /** Batches of rows, each row one CellValue per column, in the query's order. Pulled, never pushed: back-pressure is free. */
  rows: AsyncIterable<CellValue[][]>;
}

export interface StreamOptions {
  /**
   * Aborting stops the statement on the database itself (pg_cancel_backend, KILL QUERY, SIGKILL of
   * the SQLite process, DuckDB interrupt), releases the session, and makes the row iterator throw a
   * QueryAbortedError. Every engine must: the connector suite checks it on the server.
   */
  signal: AbortSignal;
  /** Rows per batch the connector aims for; a hint, not a promise. */
  batchSize: number;
  /**
   * Where a network engine may take a warm session for this statement and give it back after a clean
   * end (warm-sessions.ts). Absent: the statement opens its own session and ends it.
   */
  warm?: WarmSessionSlot;
}

/**
 * What a connector may reach on behalf of one organization, decided by the operator, never by the
 * user's configuration. Built per organization by ConnectionResolver.contextFor().
 */
export interface ConnectorContext {
  /**
   * The organization's own directory (`$QRUN_FILE_ROOT/<organization id>`): file-based connectors open
   * paths relative to it and nothing outside it.
   */
  fileDir: string;
  /**
   * The egress policy: network connectors resolve and check every destination through it and dial
   * only the addresses it checked (src/connectors/network.ts).
   */
  egress: EgressPolicy;
  /** The operator's limits for DuckDB instances; the connector's own defaults where absent (tests). */
  duckdb?: DuckDBLimits;
}

/** Per DuckDB instance: QRUN_DUCKDB_THREADS, QRUN_DUCKDB_MEMORY_BYTES, QRUN_DUCKDB_MAX_TEMP_BYTES. */
export interface DuckDBLimits {
  threads: number;
  /** memory_limit: DuckDB's buffer manager holds at most this much; spooled results spill beyond it. */
  memoryBytes: number;
  /** max_temp_directory_size: spilled data beyond this fails the statement. */
  maxTempBytes: number;
}

/** What one engine implements, typed by its configuration `C` (already checked against its schema). */
export interface Engine<C> {
  /** The type id used in the API (`postgresql`, `mysql`, `sqlite`, `duckdb`). */
  readonly type: string;
  /** Human name (`PostgreSQL`). */
  readonly name: string;
  readonly capabilities: ConnectorCapabilities;

  /**
   * Checks beyond the schema, e.g. that a file path leads to a file in the organization's directory or
   * that a host name is one. Throws AppError 400 naming the field.
   */
  checkConfig?(config: C, context: ConnectorContext): void;

  /**
   * Where a network engine connects (host, port and database name, whatever its fields are called), for
   * the egress policy's check before a connection is saved or tested. File-based engines have none.
   */
  target?(config: C): EgressTarget;

  /** Connects and runs a trivial query. Throws DatabaseError with the database's message. */
  test(config: C, context: ConnectorContext): Promise<void>;

  /**
   * Runs one statement with a server-side cursor (or the engine's equivalent) and streams its rows.
   * Rows never pile up in memory: at most about one batch is held at a time.
   * Throws (at call time or from the iterator) DatabaseError for database errors and
   * QueryAbortedError when the signal aborted it.
   */
  stream(
    config: C,
    sql: string,
    parameters: readonly ParameterValue[],
    options: StreamOptions,
    context: ConnectorContext,
  ): Promise<QueryStream>;
}

/**
 * A connector as the registry holds it: any engine, its configuration checked by its schema on every
 * entry. `test` and `stream` are the engine's, after that check (a configuration that fails it there
 * is a DatabaseError).
 */
export interface Connector extends Omit<Engine<ConnectorConfig>, 'checkConfig'> {
  /**
   * The configuration's JSON Schema as a client writes it (fields with a default are optional there),
   * for the OpenAPI document: types, ranges, defaults, descriptions and the `x-secret`/`x-target` keywords.
   */
  readonly configSchema: TObject;
  /** The fields as GET /api/connection_types lists them, derived from the schema. */
  readonly configFields: readonly ConfigField[];

  /**
   * A client's configuration checked against the schema: aliases mapped, unknown fields refused, empty
   * values (null, '') dropped, defaults filled, types and ranges checked. Throws AppError 400
   * `invalid_configuration` naming the field.
   */
  parseConfig(input: unknown): ConnectorConfig;

  /**
   * A stored configuration with every alias key renamed to its field's own name, nothing else changed or
   * checked: a configuration saved under earlier field names, before its secrets are opened or shown.
   */
  canonicalNames(stored: ConnectorConfig): Record<string, unknown>;

  /**
   * The engine's own checks after parseConfig (and after the service has put kept secrets back), e.g.
   * that a file path leads to a file in the organization's directory. Throws AppError 400 naming the
   * field. Returns the configuration to store (file paths stay as the client gave them).
   */
  validateConfig(config: ConnectorConfig, context: ConnectorContext): ConnectorConfig;
}

/** What a DatabaseError says beyond its message, for a failed query's `error_details`. */
export interface DatabaseErrorDetails {
  cause?: unknown;
  /** The five-character SQLSTATE, where the engine gives one. */
  sqlstate?: string;
  /** 1-based character offset into the SQL as it was sent, where the engine gives one. */
  position?: number;
  /** Whether the same statement may succeed when run again (a deadlock, a dropped connection). Default false. */
  retryable?: boolean;
}

/**
 * A database said no. `message` is the database's own, with credentials scrubbed. `code` is machine-readable:
 * the engine's own name for the error (PostgreSQL's condition name, MySQL's `ER_…`, `SQLITE_…`, DuckDB's
 * error class) or one of qrun's (`connection_failed`, `host_not_allowed`…).
 */
export class DatabaseError extends Error {
  readonly sqlstate: string | undefined;
  readonly position: number | undefined;
  readonly retryable: boolean;

  constructor(
    message: string,
    readonly code?: string,
    options: DatabaseErrorDetails = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DatabaseError';
    this.sqlstate = options.sqlstate;
    this.position = options.position;
    this.retryable = options.retryable ?? false;
  }
}

/** The statement was stopped because its AbortSignal fired (cancel, timeout or shutdown). */
export class QueryAbortedError extends Error {
  constructor(readonly reason: unknown) {
    super('The query was stopped.');
    this.name = 'QueryAbortedError';
  }
}
