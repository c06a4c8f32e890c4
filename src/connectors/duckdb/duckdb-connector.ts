import { realpathSync } from 'node:fs';
import { sep } from 'node:path';
import {
  DOUBLE,
  DuckDBInstance,
  ResultReturnType,
  type DuckDBConnection,
  type DuckDBResult,
  type DuckDBType,
} from '@duckdb/node-api';
import { badRequest, isAppError } from '../../core/errors.js';
import {
  DatabaseError,
  QueryAbortedError,
  type CellValue,
  type Connector,
  type ConnectorContext,
  type ParameterValue,
  type QueryStream,
} from '../connector.js';
import { resolveUnderRoot } from '../file-path.js';
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
 * SQL may read or write files (read_csv, COPY … TO, ATTACH) only under the file root, and can
 * change no setting afterwards. DuckDB checks allowed_directories by path prefix, so a symlink the
 * operator placed inside the root can still lead outside it.
 */
async function lockDown(connection: DuckDBConnection, fileRoot: string): Promise<void> {
  const root = realpathSync(fileRoot);
  const dir = (root.endsWith(sep) ? root : root + sep).replaceAll("'", "''");
  await connection.run(`SET allowed_directories = ['${dir}']`);
  await connection.run('SET enable_external_access = false');
  await connection.run('SET lock_configuration = true');
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
const shared = new Map<string, { opening: Promise<DuckDBInstance>; users: number }>();

async function openInstance(path: string, fileRoot: string): Promise<DuckDBInstance> {
  const instance = await DuckDBInstance.create(path, INSTANCE_OPTIONS);
  try {
    const connection = await instance.connect();
    try {
      await lockDown(connection, fileRoot);
    } finally {
      connection.closeSync();
    }
  } catch (error) {
    instance.closeSync();
    throw error;
  }
  return instance;
}

async function lease(path: string, fileRoot: string): Promise<Lease> {
  if (path === MEMORY) {
    const instance = await openInstance(path, fileRoot);
    return { instance, release: () => instance.closeSync() };
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
    current.opening.then((i) => i.closeSync()).catch(() => undefined);
  };
  try {
    return { instance: await current.opening, release };
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
    if (!this.busy) this.close();
  };
}

/** DuckDB infers a parameter's type from the JS value; numbers beyond 2^53 can only be doubles. */
function parameterTypes(parameters: readonly ParameterValue[]): (DuckDBType | undefined)[] {
  return parameters.map((p) => (typeof p === 'number' && !Number.isSafeInteger(p) ? DOUBLE : undefined));
}

async function startStatement(
  session: DuckSession,
  sql: string,
  parameters: readonly ParameterValue[],
): Promise<DuckDBResult> {
  return session.call(async (connection) => {
    const statements = await connection.extractStatements(sql);
    if (statements.count === 0) throw new DatabaseError('The query contains no SQL statement.');
    // Like the other engines: one statement per query, so nothing runs before the one streamed.
    if (statements.count > 1) throw new DatabaseError('The query must contain exactly one SQL statement.');
    const prepared = await statements.prepare(0);
    try {
      // bind() infers the type where an entry is undefined; the declared type omits that case.
      prepared.bind([...parameters], parameterTypes(parameters) as DuckDBType[]);
      return await prepared.stream();
    } finally {
      prepared.destroySync();
    }
  });
}

async function* batches(
  session: DuckSession,
  result: DuckDBResult,
  converters: CellConverter[],
  batchSize: number,
): AsyncGenerator<CellValue[][]> {
  try {
    let batch: CellValue[][] = [];
    for (;;) {
      // One chunk (about 2048 rows) at a time: the result is never materialized.
      const chunk = await session.call(() => result.fetchChunk());
      if (!chunk || chunk.rowCount === 0) break;
      for (const row of chunk.getRows()) {
        batch.push(row.map((value, i) => (converters[i] ?? String)(value)));
        if (batch.length >= batchSize) {
          yield batch;
          batch = [];
          session.throwIfAborted();
        }
      }
    }
    if (batch.length > 0) yield batch;
  } finally {
    session.close();
  }
}

function configuredPath(config: Record<string, unknown>): string {
  if (typeof config.path !== 'string') {
    throw badRequest('invalid_configuration', 'configuration.path is required.', {
      field: 'configuration.path',
    });
  }
  return config.path;
}

function resolvePath(config: Record<string, unknown>, context: ConnectorContext): string {
  const path = configuredPath(config);
  return path.trim() === MEMORY ? MEMORY : resolveUnderRoot(path, context.fileRoot, 'path');
}

/** The path to open, checked again at use: the file or a symlink may have changed since validation. */
function openablePath(config: Record<string, unknown>, context: ConnectorContext): string {
  try {
    return resolvePath(config, context);
  } catch (error) {
    if (isAppError(error)) throw new DatabaseError(error.message, error.key);
    throw error;
  }
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
    const path = openablePath(config, context);
    if (options.signal.aborted) throw new QueryAbortedError(options.signal.reason);
    let opened: Lease;
    try {
      opened = await lease(path, context.fileRoot);
    } catch (error) {
      throw toDatabaseError(error);
    }
    const session = new DuckSession(opened, options.signal);
    let result: DuckDBResult;
    try {
      result = await startStatement(session, sql, parameters);
    } catch (error) {
      session.close();
      throw error;
    }
    if (result.returnType !== ResultReturnType.QUERY_RESULT) {
      // INSERT/UPDATE/DELETE (a row count) and DDL: no result set.
      session.close();
      return { columns: [], rows: (async function* () {})() };
    }
    const types = result.columnTypes();
    const columns = result.columnNames().map((name, i) => {
      const type = types[i];
      return { name, type: type ? duckdbTypeName(type) : 'UNKNOWN' };
    });
    const converters = types.map(cellConverter);
    return { columns, rows: batches(session, result, converters, Math.max(1, options.batchSize)) };
  },
};
