import type { ChildProcess } from 'node:child_process';
import { badRequest } from '../../core/errors.js';
import { QueryAbortedError, type CellValue, type ColumnInfo, type ConnectorContext } from '../connector.js';
import { resolveUnderRoot } from '../file-path.js';
import type { SqliteConfig } from './sqlite-connector.js';
import { workerError, workerExited, workerFailed, workerGone } from './sqlite-errors.js';
import type { WarmSession, WarmSessionSlot } from '../warm-sessions.js';
import { attach, detach, sqliteProcesses, usable } from './sqlite-processes.js';

/**
 * One SQLite statement's session: a child process (sqlite-worker.ts) that runs this statement alone
 * (pre-started, sqlite-processes.ts, or kept from the same stored connection's last statement) and is
 * killed (SIGKILL) on abort, which stops the statement inside sqlite3_step() at once.
 *
 * The exchange is pull-based: the worker sends the columns with the first batch, then one batch per
 * `next` request and nothing unasked, so at most one batch is ever in flight (memory stays flat).
 * The IPC channel uses Node's "advanced" (structured clone) serialization, so bigint and Uint8Array
 * cross it unchanged.
 */

/**
 * The database file in the organization's directory that a session opens (checked again at every
 * open); SQLite's `:memory:` would be a new, empty database per query.
 */
export function databasePath(config: SqliteConfig, context: ConnectorContext): string {
  if (config.path.trim() === ':memory:') {
    throw badRequest(
      'invalid_configuration',
      'configuration.path must name a database file: an in-memory SQLite database would be empty for every query.',
      { field: 'configuration.path' },
    );
  }
  return resolveUnderRoot(config.path, context.fileDir, 'path');
}

// ---- the messages ----

/** What better-sqlite3 can bind: booleans become 0/1 and safe integers bigint before sending. */
export type SqliteParameter = null | number | bigint | string;

export interface StartRequest {
  type: 'start';
  /** Absolute path, already checked to be a file in the organization's directory. */
  path: string;
  /** Open with SQLITE_OPEN_READONLY: nothing can change the file. */
  readOnly: boolean;
  sql: string;
  parameters: SqliteParameter[];
  batchSize: number;
}

export interface NextRequest {
  type: 'next';
}

export type ToWorker = StartRequest | NextRequest;

/** The first reply: the columns and the first batch (needed anyway to type expression columns). */
export interface ColumnsReply {
  type: 'columns';
  columns: ColumnInfo[];
  rows: CellValue[][];
  done: boolean;
}

export interface BatchReply {
  type: 'batch';
  rows: CellValue[][];
  done: boolean;
}

export interface ErrorReply {
  type: 'error';
  message: string;
  code?: string;
}

/** Sent once, unasked, when the process has started and waits for its statement (sqlite-processes.ts). */
export interface ReadyReply {
  type: 'ready';
}

export type FromWorker = ReadyReply | ColumnsReply | BatchReply | ErrorReply;

export type Reply = ColumnsReply | BatchReply;

// ---- the session ----

/** A worker process waiting, between two statements of one stored connection, in the warm-session pool. */
class WarmSqliteProcess implements WarmSession {
  constructor(readonly child: ChildProcess) {}

  // The worker closes its file and exits when the parent disconnects.
  end(): Promise<void> {
    if (usable(this.child)) this.child.disconnect();
    return Promise.resolve();
  }

  onLost(listener: () => void): () => void {
    this.child.once('exit', listener);
    return () => this.child.off('exit', listener);
  }
}

/** Worker processes are alike whatever the configuration: the owner (the stored connection) is the key. */
const WARM_KEY = 'sqlite';

/**
 * One worker process running one statement, driven one request at a time (pull-based). A statement
 * read to its end gives the process back to its stored connection's warm sessions (or lets it exit);
 * whatever else happens (error, abort, early stop, unexpected exit) ends with the process gone.
 */
export class WorkerSession {
  private readonly child: ChildProcess;
  private waiter: { resolve(reply: Reply): void; reject(error: Error): void } | undefined;
  private failure: Error | undefined;
  private finished = false;

  constructor(
    private readonly signal: AbortSignal,
    private readonly warm?: WarmSessionSlot,
  ) {
    const kept = warm?.pool.enabled ? warm.pool.take(warm.owner, WARM_KEY) : undefined;
    if (kept instanceof WarmSqliteProcess && usable(kept.child)) {
      this.child = kept.child;
      attach(this.child);
    } else {
      void kept?.end();
      this.child = sqliteProcesses.take();
    }
    this.child.on('message', this.onMessage);
    this.child.on('error', this.onError);
    this.child.on('exit', this.onExit);
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  request(message: ToWorker): Promise<Reply> {
    if (this.signal.aborted) return Promise.reject(new QueryAbortedError(this.signal.reason));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Reply>((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.child.send(message, (error) => {
        if (error) this.fail(workerGone(error));
      });
    });
  }

  /** Stops the worker unless it already finished on its own; safe to call more than once. */
  dispose(): void {
    this.signal.removeEventListener('abort', this.onAbort);
    if (!this.finished) this.kill();
  }

  private readonly onMessage = (message: FromWorker): void => {
    if (message.type === 'ready') return; // a fresh process announcing itself; the statement is what counts
    if (message.type === 'error') {
      this.fail(workerError(message));
      return;
    }
    if (message.done) {
      // Nothing more to read (the worker has closed the file): the process may serve the next statement.
      this.finished = true;
      this.signal.removeEventListener('abort', this.onAbort);
      this.release();
    }
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve(message);
  };

  private readonly onError = (error: Error): void => this.fail(workerFailed(error));

  private readonly onExit = (code: number | null, signalName: NodeJS.Signals | null): void => {
    if (!this.finished) this.fail(workerExited(code, signalName));
  };

  /** Gives the process of a finished statement to the warm-session pool, or lets it exit. */
  private release(): void {
    this.child.off('message', this.onMessage);
    this.child.off('error', this.onError);
    this.child.off('exit', this.onExit);
    const { warm } = this;
    if (warm?.pool.enabled && usable(this.child)) {
      detach(this.child);
      warm.pool.give(warm.owner, WARM_KEY, new WarmSqliteProcess(this.child));
    } else if (this.child.connected) {
      this.child.disconnect();
    }
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
