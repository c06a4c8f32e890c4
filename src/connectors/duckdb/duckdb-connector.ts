import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
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
  type ParameterValue,
  type QueryStream,
} from '../connector.js';
import { checkedAtOpen, configuredPath, resolveUnderRoot } from '../file-path.js';
import { cellConverter, duckdbTypeName, type CellConverter } from './duckdb-values.js';

const MEMORY = ':memory:';

/**
 * Set when an instance opens. Extensions are never downloaded or loaded from disk at run time.
 * (File access is limited in `lockDown`, because allowed_directories can only be set by SQL.)
 */
const INSTANCE_OPTIONS: Record<string, string> = {
  autoinstall_known_extensions: 'false',
  autoload_known_extensions: 'false',
};

/**
 * DuckDB's buffer manager may hold this much per instance (the default is 80% of the machine's
 * memory); beyond it, spooled results and large sorts, joins and aggregates spill to the instance's
 * temp directory.
 */
const MEMORY_LIMIT = '1GB';

/**
 * SQL may read or write files (read_csv, COPY … TO, ATTACH) only under the file root, and can
 * change no setting afterwards. DuckDB checks allowed_directories by path prefix, so a symlink the
 * operator placed inside the root can still lead outside it. DuckDB always allows its own
 * temp_directory, so spilling keeps working under these restrictions.
 */
async function lockDown(connection: DuckDBConnection, fileRoot: string): Promise<void> {
  const root = realpathSync(fileRoot);
  const dir = (root.endsWith(sep) ? root : root + sep).replaceAll("'", "''");
  await connection.run(`SET allowed_directories = ['${dir}']`);
  await connection.run('SET enable_external_access = false');
  await connection.run('SET lock_configuration = true');
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

/**
 * One open instance per database file, shared by concurrent streams and closed when the last one
 * ends: two instances on one file in one process could corrupt it, and an instance left to the
 * garbage collector (DuckDB's own instance cache) would keep the file locked for an unknown time.
 * `:memory:` gets a fresh, private instance per stream.
 */
const shared = new Map<string, { opening: Promise<OpenInstance>; users: number }>();

/**
 * Opens `path` with the memory limit and a fresh temp directory under os.tmpdir() (not DuckDB's
 * default `<file>.tmp` beside the database, or `.tmp` in the working directory for `:memory:`),
 * both set before the configuration is locked.
 */
async function openInstance(path: string, fileRoot: string): Promise<OpenInstance> {
  const spill = realpathSync(await mkdtemp(join(tmpdir(), 'qrun-duckdb-spill-')));
  const removeSpill = () => void rm(spill, { recursive: true, force: true }).catch(() => undefined);
  let instance: DuckDBInstance;
  try {
    instance = await DuckDBInstance.create(path, {
      ...INSTANCE_OPTIONS,
      memory_limit: MEMORY_LIMIT,
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
      await lockDown(connection, fileRoot);
    } finally {
      connection.closeSync();
    }
  } catch (error) {
    close();
    throw error;
  }
  return { instance, close };
}

async function lease(path: string, fileRoot: string): Promise<Lease> {
  if (path === MEMORY) {
    const opened = await openInstance(path, fileRoot);
    return { instance: opened.instance, release: () => opened.close() };
  }
  let entry = shared.get(path);
  if (!entry) {
    entry = { opening: openInstance(path, fileRoot), users: 0 };
    shared.set(path, entry);
  }
  const current = entry;
  current.users++;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    if (--current.users > 0) return;
    if (shared.get(path) === current) shared.delete(path);
    current.opening.then((o) => o.close()).catch(() => undefined);
  };
  try {
    return { instance: (await current.opening).instance, release };
  } catch (error) {
    // Opening failed: forget it so the next stream tries again.
    if (shared.get(path) === current) shared.delete(path);
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
 * Runs the one statement of `sql` to completion before any row is read, because DuckDB reports an
 * error that happens while a streamed result is being fetched as a normal end: fetchChunk() returns
 * an empty chunk, and duckdb_result_error, the only way to its message, is not in the bindings.
 * Run to completion instead, the statement's promise rejects with the database's message.
 *
 * A query (statement type SELECT) is spooled into a temporary table, whose pages DuckDB's buffer
 * manager holds within MEMORY_LIMIT and spills to the temp directory beyond it; that table is then
 * streamed. (A materialized result would not do: DuckDB keeps it in plain memory, outside the limit.)
 * Any other statement, or a query that cannot be the body of CREATE TABLE … AS, is materialized.
 * Returns undefined for a statement without a result set.
 */
async function runStatement(
  session: DuckSession,
  sql: string,
  parameters: readonly ParameterValue[],
): Promise<Finished | undefined> {
  return session.call(async (connection) => {
    const statements = await extractStatements(connection, sql);
    if (statements.count === 0) throw new DatabaseError('The query contains no SQL statement.');
    // Like the other engines: one statement per query, so nothing runs before the one streamed.
    if (statements.count > 1) throw new DatabaseError('The query must contain exactly one SQL statement.');
    const prepared = await statements.prepare(0);
    try {
      bindParameters(prepared, parameters);
      if (prepared.statementType === StatementType.SELECT) {
        const spooled = await spool(session, connection, sql, parameters, prepared);
        if (spooled) return spooled;
      }
      // interrupt() stops only a statement already running: an abort since the last await must not start one.
      session.throwIfAborted();
      const result = await prepared.run();
      // INSERT/UPDATE/DELETE (a row count) and DDL: no result set.
      if (result.returnType !== ResultReturnType.QUERY_RESULT) return undefined;
      return finished(result.columnNames(), result, result.rowCount);
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

function resolvePath(config: Record<string, unknown>, context: ConnectorContext): string {
  const path = configuredPath(config);
  return path.trim() === MEMORY ? MEMORY : resolveUnderRoot(path, context.fileRoot, 'path');
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
        'Path of an existing DuckDB database file, relative to the server’s file root (QRUN_FILE_ROOT); it must lie under that root. `:memory:` opens a new, empty in-memory database for each query.',
    },
  ],

  validateConfig(config, context) {
    return { ...config, path: resolvePath(config, context) };
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
    const path = checkedAtOpen(() => resolvePath(config, context));
    if (options.signal.aborted) throw new QueryAbortedError(options.signal.reason);
    let opened: Lease;
    try {
      opened = await lease(path, context.fileRoot);
    } catch (error) {
      throw toDatabaseError(error);
    }
    const session = new DuckSession(opened, options.signal);
    let statement: Finished | undefined;
    try {
      statement = await runStatement(session, sql, parameters);
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
