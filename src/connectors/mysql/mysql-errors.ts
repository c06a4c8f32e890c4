import { errorText, secretsOf, toDatabaseError } from '../support.js';
import type { MysqlConfig } from './mysql-connector.js';

/**
 * The error a caller sees: QueryAbortedError when the signal fired, else a DatabaseError with the
 * database's message (SQLSTATE, else the driver's code) and no credential in it.
 */
export function toMysqlError(err: unknown, config: MysqlConfig, signal?: AbortSignal): Error {
  return toDatabaseError(err, {
    message: errorText(err, 'sqlMessage'),
    code: errorText(err, 'sqlState') ?? errorText(err, 'code'),
    fallback: 'The MySQL connection failed.',
    secrets: secretsOf(config),
    signal,
  });
}

/** Whether the driver marked the error fatal: the connection is unusable and must be destroyed. */
export function isFatal(err: unknown): boolean {
  return typeof err === 'object' && err !== null && Reflect.get(err, 'fatal') === true;
}
