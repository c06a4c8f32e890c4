/**
 * How each engine's errors become the code, SQLSTATE, position and retryable flag of a failed query's
 * `error_details`, for the cases the shared suite (test/integration/query-engines.test.ts) cannot cause
 * quickly: deadlocks, serialization failures, dropped connections, locked files.
 */
import { describe, expect, it } from 'vitest';
import { DatabaseError, QueryAbortedError } from '../../src/connectors/connector.js';
import { errorClass } from '../../src/connectors/duckdb/duckdb-errors.js';
import { toMysqlError } from '../../src/connectors/mysql/mysql-errors.js';
import { pgConditionName, toPgError } from '../../src/connectors/postgres/postgres-errors.js';
import { workerError } from '../../src/connectors/sqlite/sqlite-errors.js';
import { isConnectionLoss, toDatabaseError } from '../../src/connectors/support.js';
import { OWN_ERROR_CODES, qrunErrorDetails } from '../../src/core/task-status.js';

/** An error as a driver throws it: a message and properties. */
function driverError(message: string, props: Record<string, unknown>): Error {
  return Object.assign(new Error(message), props);
}

function fields(err: Error) {
  expect(err).toBeInstanceOf(DatabaseError);
  const e = err as DatabaseError;
  return { code: e.code, sqlstate: e.sqlstate, position: e.position, retryable: e.retryable };
}

// The configurations only matter for scrubbing their secret from messages.
const pgConfig = { password: 'sekret' } as never;
const mysqlConfig = { password: 'sekret', passwd: 'sekret' } as never;

describe('PostgreSQL', () => {
  it('names a SQLSTATE by its condition, or by its class when the code is newer than the table', () => {
    expect(pgConditionName('42P01')).toBe('undefined_table');
    expect(pgConditionName('40P01')).toBe('deadlock_detected');
    expect(pgConditionName('42Q99')).toBe('syntax_error_or_access_rule_violation');
    expect(pgConditionName('ZZ999')).toBe('database_error');
  });

  it.each([
    ['40001', 'serialization_failure', true],
    ['40P01', 'deadlock_detected', true],
    ['55P03', 'lock_not_available', true],
    ['53300', 'too_many_connections', true],
    ['57P01', 'admin_shutdown', true],
    ['08006', 'connection_failure', true],
    ['22012', 'division_by_zero', false],
    ['42501', 'insufficient_privilege', false],
  ])('%s is %s, retryable %s', (sqlstate, code, retryable) => {
    const err = driverError('no', { severity: 'ERROR', code: sqlstate });
    expect(fields(toPgError(err, pgConfig))).toEqual({ code, sqlstate, position: undefined, retryable });
  });

  it("keeps PostgreSQL's position (a string in pg's error) as a number", () => {
    const err = driverError('syntax error at or near "selec"', {
      severity: 'ERROR',
      code: '42601',
      position: '8',
    });
    expect(fields(toPgError(err, pgConfig))).toMatchObject({ code: 'syntax_error', position: 8 });
  });

  it('a dropped socket is connection_failed and retryable, never a SQLSTATE', () => {
    // EPIPE has the shape of a SQLSTATE: only an error the server sent (it has a severity) carries one.
    for (const err of [
      driverError('write EPIPE', { code: 'EPIPE' }),
      driverError('read ECONNRESET', { code: 'ECONNRESET' }),
      new Error('Connection terminated unexpectedly'),
    ]) {
      expect(fields(toPgError(err, pgConfig))).toEqual({
        code: 'connection_failed',
        sqlstate: undefined,
        position: undefined,
        retryable: true,
      });
    }
  });
});

describe('MySQL and MariaDB', () => {
  it.each([
    [1213, 'ER_LOCK_DEADLOCK', '40001', true],
    [1205, 'ER_LOCK_WAIT_TIMEOUT', 'HY000', true],
    [1040, 'ER_CON_COUNT_ERROR', '08004', true],
    [1146, 'ER_NO_SUCH_TABLE', '42S02', false],
    [1064, 'ER_PARSE_ERROR', '42000', false],
  ])('%i (%s, SQLSTATE %s) is retryable %s', (errno, code, sqlstate, retryable) => {
    const err = driverError('no', { errno, code, sqlState: sqlstate, sqlMessage: 'the server says no' });
    const mapped = toMysqlError(err, mysqlConfig);
    expect(mapped.message).toBe('the server says no');
    expect(fields(mapped)).toEqual({ code, sqlstate, position: undefined, retryable });
  });

  it('an error number the driver has no name for is ER_<number>', () => {
    const err = driverError('no', { errno: 4025, sqlState: '23000', sqlMessage: 'CONSTRAINT failed' });
    expect(fields(toMysqlError(err, mysqlConfig))).toMatchObject({ code: 'ER_4025', sqlstate: '23000' });
  });

  it('a lost connection is connection_failed and retryable', () => {
    const err = driverError('Connection lost: The server closed the connection.', {
      code: 'PROTOCOL_CONNECTION_LOST',
      fatal: true,
    });
    expect(fields(toMysqlError(err, mysqlConfig))).toMatchObject({
      code: 'connection_failed',
      retryable: true,
    });
  });
});

describe('SQLite', () => {
  it.each([
    ['SQLITE_BUSY', true],
    ['SQLITE_BUSY_SNAPSHOT', true],
    ['SQLITE_LOCKED', true],
    ['SQLITE_LOCKED_SHAREDCACHE', true],
    ['SQLITE_ERROR', false],
    ['SQLITE_CONSTRAINT_UNIQUE', false],
    ['SQLITE_READONLY', false],
  ])('%s is retryable %s', (code, retryable) => {
    expect(fields(workerError({ type: 'error', message: 'no', code }))).toEqual({
      code,
      sqlstate: undefined,
      position: undefined,
      retryable,
    });
  });
});

describe('DuckDB', () => {
  it.each([
    ['Binder Error: Referenced column "x" not found', 'binder_error', false],
    ['Parser Error: syntax error at or near "SELEC"', 'parser_error', false],
    ['Catalog Error: Table with name nope does not exist!', 'catalog_error', false],
    ['Invalid Input Error: boom', 'invalid_input_error', false],
    ['Out of Range Error: Overflow in multiplication', 'out_of_range_error', false],
    [
      'TransactionContext Error: Catalog write-write conflict on create with "t"',
      'transaction_context_error',
      true,
    ],
    ['IO Error: Could not set lock on file "/x.duckdb": Conflicting lock is held', 'io_error', true],
    ['IO Error: No files found that match the pattern "x.csv"', 'io_error', false],
    ['INTERNAL Error: Attempted to access index 1 within vector of size 1', 'internal_error', false],
    ['The query contains no SQL statement.', undefined, false],
  ])('%s → %s, retryable %s', (message, code, retryable) => {
    expect(errorClass(message)).toEqual({ code, retryable });
  });
});

describe('any engine', () => {
  it('a socket error of a driver is connection_failed and retryable', () => {
    expect(isConnectionLoss(driverError('connect ECONNREFUSED 127.0.0.1:1', { code: 'ECONNREFUSED' }))).toBe(
      true,
    );
    expect(isConnectionLoss(new Error('relation "x" does not exist'))).toBe(false);
    expect(
      fields(toDatabaseError(driverError('read ETIMEDOUT', { code: 'ETIMEDOUT' })) as Error),
    ).toMatchObject({
      code: 'connection_failed',
      retryable: true,
    });
  });

  it('an abort is the abort, whatever the driver threw', () => {
    const controller = new AbortController();
    controller.abort({ kind: 'canceled' });
    const err = toDatabaseError(driverError('read ECONNRESET', { code: 'ECONNRESET' }), {
      signal: controller.signal,
    });
    expect(err).toBeInstanceOf(QueryAbortedError);
  });

  it("qrun's own codes: only a lost or interrupted worker, a full store or a failed connection may pass on a retry", () => {
    const retryable = Object.entries(OWN_ERROR_CODES)
      .filter(([, may]) => may)
      .map(([code]) => code);
    expect(retryable.sort()).toEqual(['connection_failed', 'interrupted', 'lost', 'storage_full']);
    expect(qrunErrorDetails('lost')).toEqual({
      code: 'lost',
      sqlstate: null,
      retryable: true,
      position: null,
    });
  });
});
