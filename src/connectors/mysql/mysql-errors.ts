import { errorText, isConnectionLoss, secretsOf, toDatabaseError } from '../support.js';
import type { MysqlConfig } from './mysql-connector.js';

/**
 * Server error numbers after which the same statement may succeed: lock wait timeout (1205), deadlock
 * (1213), too many connections (1040), server shutting down (1053), connection killed (MariaDB's 1927).
 */
const RETRYABLE_ERRNOS = new Set([1040, 1053, 1205, 1213, 1927]);

/**
 * The error a caller sees: QueryAbortedError when the signal fired, else a DatabaseError with the
 * database's message and no credential in it, its SQLSTATE, and as code the name of its error number
 * (`ER_NO_SUCH_TABLE` for 1146; `ER_<errno>` where the driver knows no name).
 */
export function toMysqlError(err: unknown, config: MysqlConfig, signal?: AbortSignal): Error {
  const errno: unknown = typeof err === 'object' && err !== null ? Reflect.get(err, 'errno') : undefined;
  // A server error has a positive number; a socket error's errno is the system's (negative) one.
  const server = typeof errno === 'number' && errno > 0 ? errno : undefined;
  const sqlstate = errorText(err, 'sqlState');
  const lost = server === undefined && isConnectionLoss(err);
  return toDatabaseError(err, {
    message: errorText(err, 'sqlMessage'),
    code: lost
      ? 'connection_failed'
      : (errorText(err, 'code') ?? (server === undefined ? undefined : `ER_${server}`)),
    sqlstate,
    retryable:
      lost ||
      (server !== undefined && RETRYABLE_ERRNOS.has(server)) ||
      sqlstate === '40001' ||
      (sqlstate?.startsWith('08') ?? false),
    fallback: 'The MySQL connection failed.',
    secrets: secretsOf({ password: config.passwd }),
    signal,
  });
}

/** Whether the driver marked the error fatal: the connection is unusable and must be destroyed. */
export function isFatal(err: unknown): boolean {
  return typeof err === 'object' && err !== null && Reflect.get(err, 'fatal') === true;
}
