import { DatabaseError } from '../connector.js';
import { describeError, toDatabaseError } from '../support.js';

/**
 * DuckDB's errors as the caller sees them: DuckDB's own message, without the driver's prefixes, with
 * line numbers that count the user's SQL (not the spooling wrapper), and qrun's own refusals. DuckDB
 * has no credentials in its configuration, so nothing needs scrubbing.
 */

/** Anything a DuckDB call threw, as a DatabaseError (or the QueryAbortedError it already is). */
export function duckdbError(error: unknown): Error {
  return toDatabaseError(error);
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
    return new DatabaseError(message.slice(EXTRACT_PREFIX.length), undefined, { cause: error });
  }
  // node-api asks DuckDB for the error of an empty statement list, which has none, and the binding throws this.
  if (message === 'Error in native callback') {
    return new DatabaseError('The query contains no SQL statement.', undefined, { cause: error });
  }
  return error;
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
  return message === error.message ? error : new DatabaseError(message, undefined, { cause: error });
}

/** An empty chunk is also what a failed fetch returns: a result that ends short is reported, never taken as complete. */
export function endedShort(read: number, rowCount: number | undefined): DatabaseError {
  const of = rowCount === undefined ? '' : ` of ${rowCount}`;
  return new DatabaseError(
    `DuckDB stopped delivering the result after ${read}${of} rows without reporting an error.`,
  );
}
