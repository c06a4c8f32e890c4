import { DatabaseError } from '../connector.js';
import { errorText, secretsOf, toDatabaseError } from '../support.js';
import type { PgConfig } from './postgres-connector.js';

/** What qrun answers to `COPY … TO STDOUT`, whose data it has no place for (SQLSTATE feature_not_supported). */
export function copyOutRefused(): DatabaseError {
  return new DatabaseError('COPY … TO STDOUT is not supported by qrun; run the SELECT itself.', '0A000');
}

/**
 * The error a caller sees: QueryAbortedError when the signal fired, else a DatabaseError with the
 * database's message (SQLSTATE as code) and no credential in it.
 */
export function toPgError(err: unknown, config: PgConfig, signal?: AbortSignal): Error {
  return toDatabaseError(err, {
    code: errorText(err, 'code'),
    fallback: 'The PostgreSQL connection failed.',
    secrets: secretsOf(config),
    signal,
  });
}
