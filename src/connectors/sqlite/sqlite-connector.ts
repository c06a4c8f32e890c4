import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { badRequest } from '../../core/errors.js';
import { workerEntry } from '../../core/worker-entry.js';
import {
  DatabaseError,
  QueryAbortedError,
  type CellValue,
  type Connector,
  type ConnectorContext,
  type QueryStream,
} from '../connector.js';
import {
  READ_ONLY_FIELD,
  checkedAtOpen,
  configuredPath,
  isReadOnly,
  resolveUnderRoot,
} from '../file-path.js';
import type { BatchReply, ColumnsReply, FromWorker, ToWorker } from './sqlite-protocol.js';
import { sqliteParameter } from './sqlite-values.js';

const entry = workerEntry(import.meta.url, 'sqlite-worker');

/** How long `test()` may take (opening a locked file waits on SQLite's busy timeout). */
const TEST_TIMEOUT_MS = 30_000;

/** The worker gets only what Node itself may need from the environment, never the server's secrets. */
const WORKER_ENV_KEYS = ['PATH', 'HOME', 'TMPDIR', 'TMP', 'TEMP', 'TZ', 'LANG', 'LC_ALL', 'SYSTEMROOT'];

function workerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of WORKER_ENV_KEYS) if (process.env[key] !== undefined) env[key] = process.env[key];
  return env;
}

type Reply = ColumnsReply | BatchReply;

/**
 * One worker process running one statement, driven one request at a time (pull-based).
 * Whatever happens (error, abort, early stop, unexpected exit) ends with the process gone.
 */
class WorkerSession {
  private readonly child: ChildProcess;
  private waiter: { resolve(reply: Reply): void; reject(error: Error): void } | undefined;
  private failure: Error | undefined;
  private finished = false;

  constructor(private readonly signal: AbortSignal) {
    this.child = fork(fileURLToPath(entry.url), [], {
      execArgv: entry.execArgv,
      serialization: 'advanced', // structured clone: bigint and Uint8Array survive the trip
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env: workerEnv(),
    });
    this.child.on('message', (message: FromWorker) => this.onMessage(message));
    this.child.on('error', (error) =>
      this.fail(
        new DatabaseError(`The SQLite worker process failed: ${error.message}`, undefined, { cause: error }),
      ),
    );
    this.child.on('exit', (code, signalName) => {
      if (!this.finished) {
        this.fail(
          new DatabaseError(
            `The SQLite worker process exited unexpectedly (${signalName ?? `code ${code}`}).`,
          ),
        );
      }
    });
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  request(message: ToWorker): Promise<Reply> {
    if (this.signal.aborted) return Promise.reject(new QueryAbortedError(this.signal.reason));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Reply>((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.child.send(message, (error) => {
        if (error) this.fail(new DatabaseError(`The SQLite worker process is gone: ${error.message}`));
      });
    });
  }

  /** Stops the worker unless it already finished on its own; safe to call more than once. */
  dispose(): void {
    this.signal.removeEventListener('abort', this.onAbort);
    if (!this.finished) this.kill();
  }

  private onMessage(message: FromWorker): void {
    if (message.type === 'error') {
      this.fail(new DatabaseError(message.message, message.code));
      return;
    }
    if (message.done) {
      // Nothing more to read: let the worker close the file and exit cleanly.
      this.finished = true;
      this.signal.removeEventListener('abort', this.onAbort);
      if (this.child.connected) this.child.disconnect();
    }
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve(message);
  }

  private readonly onAbort = (): void => {
    // better-sqlite3 cannot interrupt a statement; killing its process stops it mid-step.
    this.kill();
    this.reject(new QueryAbortedError(this.signal.reason));
  };

  private fail(error: Error): void {
    if (this.finished) return;
    this.failure ??= error;
    this.kill();
    this.reject(this.signal.aborted ? new QueryAbortedError(this.signal.reason) : this.failure);
  }

  private reject(error: Error): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(error);
  }

  private kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

async function* batches(session: WorkerSession, first: Reply): AsyncGenerator<CellValue[][]> {
  try {
    let reply = first;
    for (;;) {
      if (reply.rows.length > 0) yield reply.rows;
      if (reply.done) return;
      reply = await session.request({ type: 'next' });
    }
  } finally {
    // Also runs when the consumer stops early (return()) or the worker failed.
    session.dispose();
  }
}

/**
 * The database file in the organization's directory; SQLite's `:memory:` would be a new, empty
 * database per query.
 */
function resolvePath(config: Record<string, unknown>, context: ConnectorContext): string {
  const path = configuredPath(config);
  if (path.trim() === ':memory:') {
    throw badRequest(
      'invalid_configuration',
      'configuration.path must name a database file: an in-memory SQLite database would be empty for every query.',
      { field: 'configuration.path' },
    );
  }
  return resolveUnderRoot(path, context.fileDir, 'path');
}

export const sqliteConnector: Connector = {
  type: 'sqlite',
  name: 'SQLite',
  capabilities: {
    placeholders: 'question',
    // Each statement runs in its own worker process, and cancelling kills that process, which stops
    // the statement at once (a worker thread could not be stopped inside a native sqlite3_step()).
    serverCancel: true,
    fileBased: true,
  },
  configFields: [
    {
      name: 'path',
      type: 'string',
      required: true,
      secret: false,
      description:
        'Path of an existing SQLite database file, relative to the organization’s file directory on the server ($QRUN_FILE_ROOT/<organization id>); absolute paths, `..` and symbolic links are refused.',
    },
    READ_ONLY_FIELD,
  ],

  validateConfig(config, context) {
    // Refuses a path that does not lead to a file in the organization's directory. The path is kept
    // as the client gave it and resolved again at every open.
    resolvePath(config, context);
    return config;
  },

  async test(config, context) {
    // Reading the schema (not just `SELECT 1`) proves the file really is an SQLite database.
    const stream = await sqliteConnector.stream(
      config,
      'SELECT count(*) FROM sqlite_schema',
      [],
      { signal: AbortSignal.timeout(TEST_TIMEOUT_MS), batchSize: 1 },
      context,
    );
    try {
      for await (const _batch of stream.rows) {
        // drain
      }
    } catch (error) {
      if (error instanceof QueryAbortedError)
        throw new DatabaseError('Opening the SQLite database timed out.');
      throw error;
    }
  },

  async stream(config, sql, parameters, options, context): Promise<QueryStream> {
    const path = checkedAtOpen(() => resolvePath(config, context));
    if (options.signal.aborted) throw new QueryAbortedError(options.signal.reason);
    const session = new WorkerSession(options.signal);
    let first: Reply;
    try {
      first = await session.request({
        type: 'start',
        path,
        readOnly: isReadOnly(config),
        sql,
        parameters: parameters.map(sqliteParameter),
        batchSize: options.batchSize,
      });
    } catch (error) {
      session.dispose();
      throw error;
    }
    const columns = first.type === 'columns' ? first.columns : [];
    return { columns, rows: batches(session, first) };
  },
};
