/**
 * The task vocabulary shared by everything that reads or changes a query task (the API's services, the
 * worker, the sweeper, the store): its states, the terminal messages a client sees and the machine-readable
 * details of a failure. It sits below all of them, so none has to import another for a word.
 */

/** Polytomic's WorkTaskStatus, exactly: clients poll until `done` or `failed`. */
export type TaskStatus = 'created' | 'running' | 'done' | 'failed';

/** Frozen so nobody invents a fifth state. `done` and `failed` are terminal. */
export const TASK_STATUS = Object.freeze({
  created: 'created',
  running: 'running',
  done: 'done',
  failed: 'failed',
} as const satisfies Record<TaskStatus, TaskStatus>);

export const TERMINAL_STATUSES: readonly TaskStatus[] = Object.freeze(['done', 'failed']);

export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/** The error of a task whose worker died (the sweeper found its lease expired, or a restart). */
export const LOST_MESSAGE =
  'lost: the worker running this query stopped before it finished (crash or restart); its result was lost. Submit it again.';

/**
 * What a query answers (404 `expired`) once it is past its `expires`: a done query's pages are deleted then,
 * and a failed query's error is no longer served either (one rule for every finished query).
 */
export function expiredMessage(expires: string): string {
  return `The result of this query expired at ${expires} and was deleted; run the query again.`;
}

/**
 * `error_details` of a failed query, beside Polytomic's `error` string (docs/OPERATIONS.md lists the codes):
 * - `code`: qrun's own (OWN_ERROR_CODES), or the engine's: PostgreSQL's condition name (`undefined_table`),
 *   MySQL's error name (`ER_NO_SUCH_TABLE`), SQLite's result code (`SQLITE_ERROR`), DuckDB's error class
 *   (`binder_error`);
 * - `sqlstate`: the five-character SQLSTATE, where the engine gives one (PostgreSQL, MySQL, MariaDB);
 * - `retryable`: whether running the same query again may succeed (a lost worker, a deadlock, a connection
 *   that failed), false when it would fail the same way;
 * - `position`: 1-based character offset into the submitted SQL, where the engine gives one (PostgreSQL).
 */
export interface ErrorDetails {
  code: string;
  sqlstate: string | null;
  retryable: boolean;
  position: number | null;
}

/** qrun's own codes, with whether the same query may succeed when run again. */
export const OWN_ERROR_CODES = Object.freeze({
  /** Its worker stopped (crash, restart, lease ran out) before the query ended. */
  lost: true,
  /** qrun was shut down while it ran. */
  interrupted: true,
  /** It ran longer than its timeout_seconds. */
  timeout: false,
  /** POST /api/queries/{id}/cancel. */
  canceled: false,
  /** The result would exceed QRUN_MAX_RESULT_BYTES. */
  result_too_large: false,
  /** One row is larger than QRUN_PAGE_BYTES. */
  row_too_large: false,
  /** The result store ran short of QRUN_MIN_FREE_BYTES while it ran. */
  storage_full: true,
  /** The egress policy refuses the connection's host (it may have changed since the connection was saved). */
  host_not_allowed: false,
  /** The database could not be reached (refused, unreachable, timed out, name not resolved, connection dropped). */
  connection_failed: true,
  /** The connection it was submitted on has been deleted. */
  connection_not_found: false,
  /** A failure inside qrun; the server log has the details. */
  internal_error: false,
  /** A database error without a more specific code. */
  database_error: false,
} as const);

export type QrunErrorCode = keyof typeof OWN_ERROR_CODES;

/** The details of one of qrun's own codes. */
export function qrunErrorDetails(code: QrunErrorCode): ErrorDetails {
  return { code, sqlstate: null, retryable: OWN_ERROR_CODES[code], position: null };
}
