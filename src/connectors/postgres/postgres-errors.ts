import { DatabaseError } from '../connector.js';
import { errorText, isConnectionLoss, secretsOf, toDatabaseError } from '../support.js';
import type { PgConfig } from './postgres-connector.js';
import { PG_CONDITION_NAMES } from './postgres-sqlstates.js';

/** What qrun answers to `COPY … TO STDOUT`, whose data it has no place for (SQLSTATE feature_not_supported). */
export function copyOutRefused(): DatabaseError {
  return new DatabaseError(
    'COPY … TO STDOUT is not supported by qrun; run the SELECT itself.',
    'feature_not_supported',
    { sqlstate: '0A000' },
  );
}

/**
 * SQLSTATEs after which the same statement may succeed: serialization failure and deadlock (the
 * transaction lost a race), lock_timeout, and the server being out of connections, shutting down or
 * starting up. Class 08 (connection exceptions) is retryable as a whole.
 */
const RETRYABLE = new Set(['40001', '40P01', '55P03', '53300', '57P01', '57P02', '57P03']);

/** PostgreSQL's condition name for a SQLSTATE (`42P01` → `undefined_table`), else its class's. */
export function pgConditionName(sqlstate: string): string {
  return PG_CONDITION_NAMES[sqlstate] ?? PG_CONDITION_NAMES[`${sqlstate.slice(0, 2)}000`] ?? 'database_error';
}

/**
 * The error a caller sees: QueryAbortedError when the signal fired, else a DatabaseError with the
 * database's message, no credential in it, its SQLSTATE and condition name, and the position PostgreSQL
 * reports (1-based, in characters of the SQL as sent, which qrun sends unchanged).
 */
export function toPgError(err: unknown, config: PgConfig, signal?: AbortSignal): Error {
  // Only an error the server sent has a severity; a socket's `code` (EPIPE) is no SQLSTATE.
  const fromServer = errorText(err, 'severity') !== undefined;
  const code = errorText(err, 'code');
  const sqlstate = fromServer && code !== undefined && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
  const position = Number(errorText(err, 'position'));
  const lost = sqlstate === undefined && isConnectionLoss(err);
  return toDatabaseError(err, {
    code: sqlstate !== undefined ? pgConditionName(sqlstate) : lost ? 'connection_failed' : undefined,
    sqlstate,
    position: Number.isInteger(position) && position > 0 ? position : undefined,
    retryable: lost || (sqlstate !== undefined && (sqlstate.startsWith('08') || RETRYABLE.has(sqlstate))),
    fallback: 'The PostgreSQL connection failed.',
    secrets: secretsOf(config),
    signal,
  });
}
