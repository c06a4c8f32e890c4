import { DatabaseError } from '../connector.js';
import { describeError, toDatabaseError } from '../support.js';

/**
 * DuckDB's errors as the caller sees them: DuckDB's own message, without the driver's prefixes, with
 * line numbers that count the user's SQL (not the spooling wrapper), and qrun's own refusals. DuckDB
 * has no credentials in its configuration, so nothing needs scrubbing.
 */

/** Anything a DuckDB call threw, as a DatabaseError (or the QueryAbortedError it already is). */
export function duckdbError(error: unknown): Error {
  return toDatabaseError(error, errorClass(describeError(error)));
}

/**
 * DuckDB's error class, from the start of its message ("Binder Error: …" → `binder_error`,
 * "TransactionContext Error: …" → `transaction_context_error`), as the code, and whether running the
 * statement again may pass: a transaction conflict, or a database file locked by another process.
 */
export function errorClass(message: string): { code?: string; retryable: boolean } {
  const name = /^([A-Za-z][A-Za-z ]*?) Error: /.exec(message)?.[1];
  const code =
    name === undefined
      ? undefined
      : `${name
          .replace(/([a-z])([A-Z])/g, '$1_$2')
          .toLowerCase()
          .replace(/ +/g, '_')}_error`;
  const retryable =
    (code === 'transaction_context_error' && /conflict/i.test(message)) ||
    (code === 'io_error' && /Could not set lock on file/.test(message));
  return { code, retryable };
}

/** A DatabaseError of DuckDB's message, with its class. */
function classified(message: string, cause: unknown): DatabaseError {
  return new DatabaseError(message, errorClass(message).code, { ...errorClass(message), cause });
}

/** node-api's prefix on DuckDB's own parser message. */
const EXTRACT_PREFIX = 'Failed to extract statements: ';

/**
 * A failure of extractStatements(): a syntax error is DuckDB's own message, without the driver's
 * prefix; other failures stay as they are.
 */
export function extractError(error: unknown): unknown {
  const message = describeError(error);
  if (message.startsWith(EXTRACT_PREFIX)) {
    return classified(message.slice(EXTRACT_PREFIX.length), error);
  }
  // node-api asks DuckDB for the error of an empty statement list, which has none, and the binding throws this.
  if (message === 'Error in native callback') {
    return new DatabaseError(EMPTY_QUERY, 'parser_error', { cause: error });
  }
  return error;
}

export const EMPTY_QUERY = 'The query contains no SQL statement.';

/** qrun's own refusals of a statement, classed as DuckDB would class them. */
export function refusal(message: string): DatabaseError {
  return new DatabaseError(message, message === READ_ONLY_REFUSAL ? 'permission_error' : 'parser_error');
}

export const READ_ONLY_REFUSAL =
  'This connection is read-only: COPY, EXPORT DATABASE, ATTACH and COPY FROM DATABASE are refused. ' +
  'Read files with read_csv(), read_parquet() and the like, or save the connection with "read_only": false ' +
  'to write inside the organization’s file directory.';

/** DuckDB's error context ("LINE 2: SELECT …") counts the CREATE TABLE line that spool() put first. */
export function userLines(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const message = error.message.replace(
    /(\n\nLINE )(\d+)(:)(?![\s\S]*\n\nLINE \d+:)/,
    (_, before: string, line: string, after: string) => `${before}${Math.max(1, Number(line) - 1)}${after}`,
  );
  return message === error.message ? error : classified(message, error);
}

/** An empty chunk is also what a failed fetch returns: a result that ends short is reported, never taken as complete. */
export function endedShort(read: number, rowCount: number | undefined): DatabaseError {
  const of = rowCount === undefined ? '' : ` of ${rowCount}`;
  return new DatabaseError(
    `DuckDB stopped delivering the result after ${read}${of} rows without reporting an error.`,
  );
}
