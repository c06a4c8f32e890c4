import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import {
  DOUBLE,
  DuckDBInstance,
  DuckDBTypeId,
  ResultReturnType,
  StatementType,
  type DuckDBConnection,
  type DuckDBExtractedStatements,
  type DuckDBPreparedStatement,
  type DuckDBResult,
  type DuckDBType,
} from '@duckdb/node-api';
import {
  DatabaseError,
  QueryAbortedError,
  type CellValue,
  type ColumnInfo,
  type Connector,
  type ConnectorContext,
  type DuckDBLimits,
  type ParameterValue,
  type QueryStream,
} from '../connector.js';
import {
  READ_ONLY_FIELD,
  checkedAtOpen,
  configuredPath,
  isReadOnly,
  organizationDir,
  resolveUnderRoot,
} from '../file-path.js';
import { cellConverter, duckdbTypeName, type CellConverter } from './duckdb-values.js';

const MEMORY = ':memory:';

/**
 * Set when an instance opens. Extensions are never downloaded or loaded from disk at run time, and
 * no secret is ever written to disk (`~/.duckdb/stored_secrets`). File access is limited in
 * `lockDown`, because allowed_directories can only be set by SQL.
 */
const INSTANCE_OPTIONS: Record<string, string> = {
  autoinstall_known_extensions: 'false',
  autoload_known_extensions: 'false',
  allow_community_extensions: 'false',
  allow_persistent_secrets: 'false',
};

const GiB = 1024 ** 3;

/**
 * Per instance, unless the operator set others (QRUN_DUCKDB_*, passed in the ConnectorContext).
 * DuckDB's own defaults are a thread per core, 80% of the machine's memory and 90% of the temp
 * directory's disk, for every instance alike: a few concurrent queries could take the machine.
 * Within memoryBytes DuckDB's buffer manager holds spooled results and large sorts, joins and
 * aggregates; beyond it they spill to the instance's temp directory, up to maxTempBytes.
 */
const DEFAULT_LIMITS: DuckDBLimits = {
  threads: Math.min(2, availableParallelism()),
  memoryBytes: GiB,
  maxTempBytes: 10 * GiB,
};

/**
 * SQL may read or write files (read_csv, glob, COPY … TO, ATTACH) only in the organization's own
 * directory, and can change no setting afterwards (allowed_directories, enable_external_access, …).
 * DuckDB refuses paths with `..` and checks the rest by prefix (`dir` ends with a separator, so
 * `<dir>-other/` does not match); it follows a symlink inside the directory, which only someone with
 * a shell could plant there (docs/OPERATIONS.md). DuckDB always allows its own temp_directory (the
 * instance's private spill directory), so spilling keeps working without listing it.
 */
async function lockDown(connection: DuckDBConnection, dir: string): Promise<void> {
  const prefix = (dir.endsWith(sep) ? dir : dir + sep).replaceAll("'", "''");
  await connection.run(`SET allowed_directories = ['${prefix}']`);
  await connection.run('SET enable_external_access = false');
  await connection.run('SET lock_configuration = true');
}

/** What one stream opens: the database (`:memory:` or a file's absolute path), for whom, and how. */
interface Target {
  path: string;
  /** The organization's directory (real path): the only one the session may reach. */
  dir: string;
  readOnly: boolean;
  limits: DuckDBLimits;
}

/** An open instance with its private spill directory; `close` removes both. */
interface OpenInstance {
  instance: DuckDBInstance;
  close(): void;
}

interface Lease {
  instance: DuckDBInstance;
  release(): void;
}

interface SharedInstance {
  readOnly: boolean;
  opening: Promise<OpenInstance>;
  users: number;
  /** No new stream joins: the last user is gone, or a stream waits to open the file the other way. */
  draining: boolean;
  /** Resolves once the instance is closed and no longer in `shared`. */
  closed: Promise<void>;
  markClosed(): void;
}

/**
 * One open instance per database file, shared by concurrent streams and closed when the last one
 * ends: two instances on one file in one process could corrupt it, and an instance left to the
 * garbage collector (DuckDB's own instance cache) would keep the file locked for an unknown time.
 * Keyed by the organization's directory and the file's path, so an instance locked down for one
 * organization never serves another. A stream that needs the other access mode (read-only vs
 * read-write) waits until the open instance has closed. `:memory:` gets a fresh, private instance
 * per stream.
 */
const shared = new Map<string, SharedInstance>();

/**
 * Opens the target with its limits and a fresh temp directory under os.tmpdir() (not DuckDB's
 * default `<file>.tmp` beside the database, or `.tmp` in the working directory for `:memory:`),
 * all set before the configuration is locked, so SQL cannot raise them. A read-only file opens
 * with access_mode READ_ONLY; DuckDB cannot open `:memory:` that way (it is private to the stream
 * anyway).
 */
async function openInstance(target: Target): Promise<OpenInstance> {
  const spill = realpathSync(await mkdtemp(join(tmpdir(), 'qrun-duckdb-spill-')));
  const removeSpill = () => void rm(spill, { recursive: true, force: true }).catch(() => undefined);
  let instance: DuckDBInstance;
  try {
    instance = await DuckDBInstance.create(target.path, {
      ...INSTANCE_OPTIONS,
      ...(target.readOnly && target.path !== MEMORY ? { access_mode: 'READ_ONLY' } : {}),
      threads: String(target.limits.threads),
      memory_limit: `${target.limits.memoryBytes}B`,
      max_temp_directory_size: `${target.limits.maxTempBytes}B`,
      temp_directory: spill,
    });
  } catch (error) {
    removeSpill();
    throw error;
  }
  const close = () => {
    try {
      instance.closeSync();
    } finally {
      removeSpill();
    }
  };
  try {
    const connection = await instance.connect();
    try {
      await lockDown(connection, target.dir);
    } finally {
      connection.closeSync();
    }
  } catch (error) {
    close();
    throw error;
  }
  return { instance, close };
}

/** Waits for `promise`, or throws QueryAbortedError as soon as the signal fires. */
function untilAborted(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new QueryAbortedError(signal.reason));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new QueryAbortedError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    void promise.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

async function lease(target: Target, signal: AbortSignal): Promise<Lease> {
  if (target.path === MEMORY) {
    const opened = await openInstance(target);
    return { instance: opened.instance, release: () => opened.close() };
  }
  const key = `${target.dir}\0${target.path}`;
  let entry = shared.get(key);
  while (entry && (entry.draining || entry.readOnly !== target.readOnly)) {
    // Let the open instance finish; streams that want it as it is wait too, so this one gets its turn.
    entry.draining = true;
    await untilAborted(entry.closed, signal);
    entry = shared.get(key);
  }
  if (!entry) {
    let markClosed = () => {};
    const closed = new Promise<void>((resolve) => (markClosed = resolve));
    entry = {
      readOnly: target.readOnly,
      opening: openInstance(target),
      users: 0,
      draining: false,
      closed,
      markClosed,
    };
    shared.set(key, entry);
  }
  const current = entry;
  current.users++;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    if (--current.users > 0) return;
    current.draining = true;
    current.opening
      .then((o) => o.close())
      .catch(() => undefined)
      .finally(() => {
        if (shared.get(key) === current) shared.delete(key);
        current.markClosed();
      });
  };
  try {
    return { instance: (await current.opening).instance, release };
  } catch (error) {
    // Opening failed: the last user's release forgets it, so the next stream tries again.
    current.draining = true;
    release();
    throw error;
  }
}

function toDatabaseError(error: unknown): Error {
  if (error instanceof DatabaseError || error instanceof QueryAbortedError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new DatabaseError(message, undefined, { cause: error });
}

/**
 * One connection running one statement. Every driver call goes through `call`, so an abort can
 * interrupt the call in flight and the connection is closed only when no call is running.
 */
class DuckSession {
  private busy = false;
  private closed = false;
  private connection: DuckDBConnection | undefined;

  constructor(
    private readonly lease: Lease,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  async call<T>(op: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    this.throwIfAborted();
    if (this.closed) throw new DatabaseError('The DuckDB connection is closed.');
    this.busy = true;
    try {
      this.connection ??= await this.lease.instance.connect();
      const value = await op(this.connection);
      this.throwIfAborted(); // an abort during the call wins over its result
      return value;
    } catch (error) {
      this.throwIfAborted();
      throw toDatabaseError(error);
    } finally {
      this.busy = false;
      if (this.signal.aborted) this.close();
    }
  }

  throwIfAborted(): void {
    if (this.signal.aborted) throw new QueryAbortedError(this.signal.reason);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.signal.removeEventListener('abort', this.onAbort);
    try {
      this.connection?.closeSync();
    } finally {
      this.lease.release();
    }
  }

  private readonly onAbort = (): void => {
    // Stops the running statement inside DuckDB; the call in flight then fails and closes us.
    this.connection?.interrupt();
    if (!this.busy) {
      this.close();
      return;
    }
    // DuckDB forgets an interrupt that comes before its statement has quite started (the call was
    // queued, the worker thread not yet running it), so repeat it until the call has returned.
    const again = setInterval(() => {
      if (this.busy && !this.closed) this.connection?.interrupt();
      else clearInterval(again);
    }, 200);
    again.unref();
  };
}

/** DuckDB infers a parameter's type from the JS value; numbers beyond 2^53 can only be doubles. */
function parameterTypes(parameters: readonly ParameterValue[]): (DuckDBType | undefined)[] {
  return parameters.map((p) => (typeof p === 'number' && !Number.isSafeInteger(p) ? DOUBLE : undefined));
}

function bindParameters(prepared: DuckDBPreparedStatement, parameters: readonly ParameterValue[]): void {
  // bind() infers the type where an entry is undefined; the declared type omits that case.
  prepared.bind([...parameters], parameterTypes(parameters) as DuckDBType[]);
}

/** node-api's prefix on DuckDB's own parser message. */
const EXTRACT_PREFIX = 'Failed to extract statements: ';

/** The statements of `sql`; a syntax error is DuckDB's own message, without the driver's prefix. */
async function extractStatements(
  connection: DuckDBConnection,
  sql: string,
): Promise<DuckDBExtractedStatements> {
  try {
    return await connection.extractStatements(sql);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (message.startsWith(EXTRACT_PREFIX)) {
      throw new DatabaseError(message.slice(EXTRACT_PREFIX.length), undefined, { cause: error });
    }
    // node-api asks DuckDB for the error of an empty statement list, which has none, and the binding throws this.
    if (message === 'Error in native callback') {
      throw new DatabaseError('The query contains no SQL statement.', undefined, { cause: error });
    }
    throw error;
  }
}

/** A statement that has run to completion, ready to be read chunk by chunk. */
interface Finished {
  columns: ColumnInfo[];
  converters: CellConverter[];
  result: DuckDBResult;
  /** The rows the statement produced, if DuckDB said: reading must deliver exactly these. */
  rowCount: number | undefined;
}

function finished(names: readonly string[], result: DuckDBResult, rowCount: number | undefined): Finished {
  const types = result.columnTypes();
  const columns = types.map((type, i) => ({ name: names[i] ?? '', type: duckdbTypeName(type) }));
  return { columns, converters: types.map(cellConverter), result, rowCount };
}

/**
 * Statements that write files or open other database files, refused on a read-only connection. An
 * access_mode READ_ONLY instance still runs them (COPY … TO and EXPORT write wherever
 * allowed_directories permits, ATTACH … (READ_WRITE) opens another file for writing), and a
 * `:memory:` database cannot be opened read-only at all. COPY is refused in both directions: the
 * statement type does not tell them apart, and read_csv() and friends read files without it.
 */
const WRITES_FILES: ReadonlySet<StatementType> = new Set([
  StatementType.COPY,
  StatementType.EXPORT,
  StatementType.ATTACH,
  StatementType.COPY_DATABASE,
]);

const READ_ONLY_REFUSAL =
  'This connection is read-only: COPY, EXPORT DATABASE, ATTACH and COPY FROM DATABASE are refused. ' +
  'Read files with read_csv(), read_parquet() and the like, or save the connection with "read_only": false ' +
  'to write inside the organization’s file directory.';

/** The first word of `sql`, upper-cased, after white space and comments. */
function leadingKeyword(sql: string): string {
  return (/^[A-Za-z_]+/.exec(sql.slice(leadingKeywordStart(sql)))?.[0] ?? '').toUpperCase();
}

/** Where the first word of `sql` starts, after white space and comments. */
function leadingKeywordStart(sql: string): number {
  let at = 0;
  for (;;) {
    while (at < sql.length && /\s/.test(sql[at]!)) at++;
    if (sql.startsWith('--', at)) {
      const end = sql.indexOf('\n', at);
      at = end < 0 ? sql.length : end + 1;
    } else if (sql.startsWith('/*', at)) {
      const end = sql.indexOf('*/', at + 2);
      at = end < 0 ? sql.length : end + 2;
    } else {
      return at;
    }
  }
}

/**
 * `CALL f(…)` as the query `FROM f(…)`, which DuckDB can spool: it materializes a CALL's whole result
 * in plain memory, outside memory_limit, even when asked to stream it (measured: `CALL range(6e7)`
 * held 600 MB before its first row). Same length and line breaks, so error positions still match.
 */
function callAsQuery(sql: string): string {
  const at = leadingKeywordStart(sql);
  return `${sql.slice(0, at)}FROM${sql.slice(at + 'CALL'.length)}`;
}

/**
 * Runs the one statement of `sql` to completion before any row is read, because DuckDB reports an
 * error that happens while a streamed result is being fetched as a normal end: fetchChunk() returns
 * an empty chunk, and duckdb_result_error, the only way to its message, is not in the bindings.
 * Run to completion instead, the statement's promise rejects with the database's message.
 *
 * A query (statement type SELECT, or a CALL read as `FROM …`) is spooled into a temporary table,
 * whose pages DuckDB's buffer manager holds within the memory limit and spills to the temp directory
 * beyond it; that table is then streamed. (A materialized result would not do: DuckDB keeps it in
 * plain memory, outside the limit.) Any other statement, or a query that cannot be the body of
 * CREATE TABLE … AS (DESCRIBE, SHOW, SUMMARIZE, PRAGMA, EXPLAIN, … RETURNING), is streamed as DuckDB
 * allows: their errors come before the first row, except in the rare statement that both streams
 * and fails part-way, which is reported as failed without DuckDB's message (see batches()).
 * Returns undefined for a statement without a result set.
 */
async function runStatement(
  session: DuckSession,
  sql: string,
  parameters: readonly ParameterValue[],
  readOnly: boolean,
): Promise<Finished | undefined> {
  return session.call(async (connection) => {
    const statements = await extractStatements(connection, sql);
    if (statements.count === 0) throw new DatabaseError('The query contains no SQL statement.');
    // Like the other engines: one statement per query, so nothing runs before the one streamed.
    if (statements.count > 1) throw new DatabaseError('The query must contain exactly one SQL statement.');
    // DuckDB creates EXPORT DATABASE's directory while preparing it, before its type is known.
    if (readOnly && leadingKeyword(sql) === 'EXPORT') throw new DatabaseError(READ_ONLY_REFUSAL);
    const prepared = await statements.prepare(0);
    try {
      if (readOnly && WRITES_FILES.has(prepared.statementType)) throw new DatabaseError(READ_ONLY_REFUSAL);
      bindParameters(prepared, parameters);
      const query =
        prepared.statementType === StatementType.SELECT
          ? sql
          : prepared.statementType === StatementType.CALL
            ? callAsQuery(sql)
            : undefined;
      if (query !== undefined) {
        const spooled = await spool(session, connection, query, parameters, prepared);
        if (spooled) return spooled;
      }
      // interrupt() stops only a statement already running: an abort since the last await must not start one.
      session.throwIfAborted();
      // Streamed, not run(): a materialized result lives in plain memory, outside memory_limit. DuckDB
      // streams what it can (PRAGMA, DESCRIBE, SHOW… produce rows as they are read) and collects the
      // rest itself before the first row, as run() would; a sink (INSERT, COPY, DDL) has run to
      // completion, its errors included, when this resolves. batches() detects a fetch that failed.
      const result = await prepared.stream();
      // INSERT/UPDATE/DELETE (a row count) and DDL: no result set.
      if (result.returnType !== ResultReturnType.QUERY_RESULT) return undefined;
      return finished(result.columnNames(), result, undefined);
    } finally {
      prepared.destroySync();
    }
  });
}

/**
 * Runs the query as `CREATE TEMP TABLE … AS <query>` and opens a stream on that table, which lives
 * as long as the connection. The query itself is prepared (bound, checked) but never run. Returns
 * undefined when the wrapped statement does not prepare (e.g. DESCRIBE, SHOW, PRAGMA), before anything ran.
 * Visible to the query itself: a catalog query (duckdb_tables(), information_schema) lists the
 * temporary `qrun_result_…` table being filled, and current_query() returns the wrapped text.
 */
async function spool(
  session: DuckSession,
  connection: DuckDBConnection,
  sql: string,
  parameters: readonly ParameterValue[],
  query: DuckDBPreparedStatement,
): Promise<Finished | undefined> {
  const table = `qrun_result_${randomBytes(8).toString('hex')}`;
  let create: DuckDBPreparedStatement | undefined;
  try {
    // The line break keeps the query on lines of its own for DuckDB's error context (see userLines).
    const statements = await connection.extractStatements(`CREATE TEMP TABLE ${table} AS\n${sql}`);
    if (statements.count !== 1) return undefined;
    create = await statements.prepare(0);
    bindParameters(create, parameters);
  } catch {
    create?.destroySync();
    return undefined;
  }
  let rowCount: number | undefined;
  try {
    session.throwIfAborted();
    // CREATE TABLE … AS answers with one row, one column: the number of rows it inserted.
    const [[count] = []] = await (await create.run()).getRows();
    rowCount = typeof count === 'bigint' || typeof count === 'number' ? Number(count) : undefined;
  } catch (error) {
    throw userLines(error);
  } finally {
    create.destroySync();
  }
  // A table scan, whose only possible failure is reading spilled pages back; batches() checks the count.
  session.throwIfAborted();
  const result = await connection.stream(`FROM ${table}`);
  return finished(queryColumnNames(query, result), result, rowCount);
}

/**
 * The names the query gave its columns. The table's own are the same except that CREATE TABLE
 * renames duplicates (`a`, `a_1`); but a query whose types depend on its parameters is only
 * planned when it runs, so its prepared form knows no columns (one of type INVALID), and then the
 * table's names are the best there are.
 */
function queryColumnNames(query: DuckDBPreparedStatement, table: DuckDBResult): string[] {
  const count = query.columnCount;
  const known = Array.from({ length: count }, (_, i) => query.columnTypeId(i) !== DuckDBTypeId.INVALID);
  if (count !== table.columnCount || known.includes(false)) return table.columnNames();
  return Array.from({ length: count }, (_, i) => query.columnName(i));
}

/** DuckDB's error context ("LINE 2: SELECT …") counts the CREATE TABLE line that spool() put first. */
function userLines(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const message = error.message.replace(
    /(\n\nLINE )(\d+)(:)(?![\s\S]*\n\nLINE \d+:)/,
    (_, before: string, line: string, after: string) => `${before}${Math.max(1, Number(line) - 1)}${after}`,
  );
  return message === error.message ? error : new DatabaseError(message, undefined, { cause: error });
}

async function* batches(
  session: DuckSession,
  statement: Finished,
  batchSize: number,
): AsyncGenerator<CellValue[][]> {
  const { result, converters, rowCount } = statement;
  try {
    let batch: CellValue[][] = [];
    let read = 0;
    for (;;) {
      // One chunk (about 2048 rows) at a time: JS never holds more than about one batch.
      const chunk = await session.call(() => result.fetchChunk());
      if (!chunk || chunk.rowCount === 0) break;
      read += chunk.rowCount;
      for (const row of chunk.getRows()) {
        batch.push(row.map((value, i) => (converters[i] ?? String)(value)));
        if (batch.length >= batchSize) {
          yield batch;
          batch = [];
          session.throwIfAborted();
        }
      }
    }
    // An empty chunk is also what a failed fetch returns (its result then turns INVALID): never end short.
    if (
      (rowCount !== undefined && read !== rowCount) ||
      result.returnType !== ResultReturnType.QUERY_RESULT
    ) {
      const of = rowCount === undefined ? '' : ` of ${rowCount}`;
      throw new DatabaseError(
        `DuckDB stopped delivering the result after ${read}${of} rows without reporting an error.`,
      );
    }
    if (batch.length > 0) yield batch;
  } finally {
    session.close();
  }
}

/**
 * The organization's directory, checked (and created on first use), and the database in it:
 * `:memory:` or the absolute path of a file given relative to that directory.
 */
function resolveTarget(config: Record<string, unknown>, context: ConnectorContext): Target {
  const path = configuredPath(config);
  return {
    path: path.trim() === MEMORY ? MEMORY : resolveUnderRoot(path, context.fileDir, 'path'),
    dir: organizationDir(context.fileDir),
    readOnly: isReadOnly(config),
    limits: context.duckdb ?? DEFAULT_LIMITS,
  };
}

export const duckdbConnector: Connector = {
  type: 'duckdb',
  name: 'DuckDB',
  capabilities: {
    // DuckDB accepts both `?` and `$1`; `?` matches SQLite's.
    placeholders: 'question',
    serverCancel: true, // connection.interrupt()
    fileBased: true,
  },
  configFields: [
    {
      name: 'path',
      type: 'string',
      required: true,
      secret: false,
      description:
        'Path of an existing DuckDB database file, relative to the organization’s file directory on the server ($QRUN_FILE_ROOT/<organization id>); absolute paths, `..` and symbolic links are refused. `:memory:` opens a new, empty in-memory database for each query. SQL reaches files in that directory only.',
    },
    READ_ONLY_FIELD,
  ],

  validateConfig(config, context) {
    // Refuses a path that does not lead to a file in the organization's directory. The path is kept
    // as the client gave it and resolved again at every open.
    const path = configuredPath(config);
    if (path.trim() !== MEMORY) resolveUnderRoot(path, context.fileDir, 'path');
    return config;
  },

  async test(config, context) {
    const stream = await duckdbConnector.stream(
      config,
      'SELECT 1',
      [],
      { signal: AbortSignal.timeout(30_000), batchSize: 1 },
      context,
    );
    for await (const _batch of stream.rows) {
      // drain
    }
  },

  async stream(config, sql, parameters, options, context): Promise<QueryStream> {
    const target = checkedAtOpen(() => resolveTarget(config, context));
    if (options.signal.aborted) throw new QueryAbortedError(options.signal.reason);
    let opened: Lease;
    try {
      opened = await lease(target, options.signal);
    } catch (error) {
      throw toDatabaseError(error);
    }
    const session = new DuckSession(opened, options.signal);
    let statement: Finished | undefined;
    try {
      statement = await runStatement(session, sql, parameters, target.readOnly);
    } catch (error) {
      session.close();
      throw error;
    }
    if (!statement) {
      session.close();
      return { columns: [], rows: (async function* () {})() };
    }
    return {
      columns: statement.columns,
      rows: batches(session, statement, Math.max(1, options.batchSize)),
    };
  },
};
