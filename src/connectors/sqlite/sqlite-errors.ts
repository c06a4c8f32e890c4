import { DatabaseError } from '../connector.js';
import type { ErrorReply } from './sqlite-session.js';

/**
 * SQLite's errors on both sides of the process boundary: the worker turns what better-sqlite3 threw
 * into a message (errorReply), the connector turns that message, or the worker's own failure, into a
 * DatabaseError. SQLite has no credentials, so nothing needs scrubbing. Imported by the worker: keep
 * it free of anything heavier than connector.ts.
 */

/** In the worker: what better-sqlite3 threw, as the message sent to the connector (SQLITE_* code kept). */
export function errorReply(error: unknown): ErrorReply {
  const err = error instanceof Error ? error : new Error(String(error));
  const code: unknown = Reflect.get(err, 'code');
  return { type: 'error', message: err.message, ...(typeof code === 'string' ? { code } : {}) };
}

/**
 * In the connector: the worker's error message as the DatabaseError the caller sees, with SQLite's
 * (extended) result code as its code. SQLITE_BUSY and SQLITE_LOCKED (another connection held a lock past
 * the busy timeout) may pass when the statement runs again.
 */
export function workerError(reply: ErrorReply): DatabaseError {
  const retryable = /^SQLITE_(BUSY|LOCKED)(_|$)/.test(reply.code ?? '');
  return new DatabaseError(reply.message, reply.code, { retryable });
}

export function workerFailed(error: Error): DatabaseError {
  return new DatabaseError(`The SQLite worker process failed: ${error.message}`, undefined, { cause: error });
}

export function workerExited(code: number | null, signal: NodeJS.Signals | null): DatabaseError {
  return new DatabaseError(`The SQLite worker process exited unexpectedly (${signal ?? `code ${code}`}).`);
}

export function workerGone(error: Error): DatabaseError {
  return new DatabaseError(`The SQLite worker process is gone: ${error.message}`);
}

/** test(): opening a locked file waits on SQLite's busy timeout, which may run out. */
export const TEST_TIMED_OUT = 'Opening the SQLite database timed out.';
