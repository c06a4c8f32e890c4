import { Type, type Static } from 'typebox';
import { TASK_STATUS, type ErrorDetails as CoreErrorDetails, type TaskStatus } from '../core/task-status.js';
import { Timestamp } from './common.js';

/** Queries, as they travel: the routes validate and document with these, and QueryService returns their
 * Static types. (A finished result's page is spliced in as stored bytes; QueryResult documents its shape.) */

export const Parameter = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()], {
  description: 'Send integers beyond 2^53 as strings: JSON numbers that large lose digits in transit.',
});

export const SubmitBody = Type.Object(
  {
    query: Type.Optional(
      Type.String({ description: 'The SQL. May come as the URL parameter `query` instead.' }),
    ),
    parameters: Type.Optional(
      Type.Array(Parameter, { maxItems: 65535, description: 'Positional values bound to $1..$n or ?.' }),
    ),
    // Upper bounds in the schema, so an absurd number is a 400 naming the field, never a 500 from
    // a metadata store column that cannot hold it.
    timeout_seconds: Type.Optional(
      Type.Integer({
        minimum: 1,
        // The store's integer column; the server's own limit (QRUN_QUERY_TIMEOUT_SECONDS) is checked after.
        maximum: 2_147_483_647,
        description: "Seconds the query may run (at most the server's QRUN_QUERY_TIMEOUT_SECONDS).",
      }),
    ),
    max_rows: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: Number.MAX_SAFE_INTEGER,
        description: 'Stop after this many rows; the result then says truncated: true.',
      }),
    ),
    callback_url: Type.Optional(
      Type.String({
        maxLength: 2048,
        description:
          'An http:// or https:// URL that qrun POSTs {id, status, count, error} to when the query ends, signed ' +
          "with your organization's webhook secret (header Qrun-Signature; see POST /api/webhook_secret). " +
          'It must pass the egress policy (400 host_not_allowed otherwise); retried with back-off for an hour.',
        examples: ['https://hooks.example.com/qrun'],
      }),
    ),
    page_rows: Type.Optional(
      Type.Integer({
        minimum: 1,
        // QRUN_PAGE_ROWS_MAX's own upper bound; the server's setting (default 10,000) is checked after.
        maximum: 1_000_000,
        description:
          "Rows per result page, instead of the server's QRUN_PAGE_ROWS (at most its QRUN_PAGE_ROWS_MAX, " +
          'default 10,000). A page still holds at most QRUN_PAGE_BYTES of JSON, so it may have fewer rows.',
      }),
    ),
  },
  { additionalProperties: false },
);

/** The task states of src/core/task-status.ts, as the API shows them: Polytomic's WorkTaskStatus. */
export const Status = Type.Union([
  Type.Literal(TASK_STATUS.created),
  Type.Literal(TASK_STATUS.running),
  Type.Literal(TASK_STATUS.done),
  Type.Literal(TASK_STATUS.failed),
]);
// Every state and nothing else: this stops compiling if the two lists drift apart.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _sameStates: Same<Static<typeof Status>, TaskStatus> = true;

/** A failed query's machine-readable details (ErrorDetails of src/core/task-status.ts). */
export const ErrorDetails = Type.Object(
  {
    code: Type.String({
      description:
        "qrun's own code (lost, interrupted, timeout, canceled, result_too_large, row_too_large, storage_full, " +
        'host_not_allowed, connection_failed, connection_not_found, internal_error, database_error) or the ' +
        "engine's: PostgreSQL's condition name (undefined_table), MySQL's error name (ER_NO_SUCH_TABLE), " +
        "SQLite's result code (SQLITE_ERROR), DuckDB's error class (binder_error).",
    }),
    sqlstate: Type.Union([Type.String(), Type.Null()], {
      description: 'The SQLSTATE, where the database gives one (PostgreSQL, MySQL, MariaDB).',
    }),
    retryable: Type.Boolean({
      description:
        'Whether submitting the same query again may succeed (a lost worker, a deadlock, a failed connection).',
    }),
    position: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], {
      description:
        'Where the error is: a 1-based character offset into the SQL, where the database gives one.',
    }),
  },
  { description: 'Present when the query failed.' },
);
// The same fields as the core's type: this stops compiling if the two drift apart.
const _sameDetails: Same<Static<typeof ErrorDetails>, CoreErrorDetails> = true;

export const Progress = Type.Object(
  {
    rows: Type.Integer({ description: 'Rows stored so far.' }),
    pages: Type.Integer({ description: 'Result pages stored so far.' }),
    bytes: Type.Integer({ description: 'Bytes of JSON stored so far.' }),
    elapsed_ms: Type.Integer({ description: 'Milliseconds since the query started running.' }),
  },
  { description: 'While running: what has been stored so far, updated after every page.' },
);
export type Progress = Static<typeof Progress>;

export const QueryResult = Type.Object({
  id: Type.String(),
  status: Status,
  queue_position: Type.Optional(
    Type.Integer({
      minimum: 0,
      description:
        "While created: how many of your organization's queries still waiting were submitted before this one " +
        '(0: it runs next from your organization). Organizations take turns for free workers, so other ' +
        "organizations' queries are not counted.",
    }),
  ),
  progress: Type.Optional(Progress),
  fields: Type.Optional(Type.Array(Type.String())),
  schema: Type.Optional(Type.Array(Type.Object({ name: Type.String(), type: Type.String() }))),
  count: Type.Optional(Type.Integer({ description: 'Rows in the whole result, not this page.' })),
  truncated: Type.Optional(Type.Boolean({ description: 'true when max_rows cut the result short.' })),
  expires: Type.Optional(Timestamp),
  results: Type.Optional(Type.Array(Type.Record(Type.String(), Type.Unknown()))),
  error: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  error_details: Type.Optional(Type.Union([ErrorDetails, Type.Null()])),
});

export const Links = Type.Object({
  next: Type.Union([Type.String(), Type.Null()]),
  previous: Type.Union([Type.String(), Type.Null()]),
  export: Type.Optional(
    Type.String({
      description:
        'qrun extension: the whole result as one download; add `?format=csv|tsv|ndjson|json|parquet|arrow`.',
      examples: ['/api/queries/43d8a2f6-58c5-4b5e-9d0b-2b1c4e3f6a70/export'],
    }),
  ),
});

export const QuerySummary = Type.Object({
  id: Type.String(),
  status: Status,
  connection_id: Type.String(),
  query: Type.String(),
  count: Type.Union([Type.Integer(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
  error_details: Type.Union([ErrorDetails, Type.Null()]),
  created_at: Timestamp,
  started_at: Type.Union([Timestamp, Type.Null()]),
  finished_at: Type.Union([Timestamp, Type.Null()]),
  expires: Type.Union([Timestamp, Type.Null()]),
});

/** A query just accepted: it runs in the background. */
export const SubmittedQuery = Type.Object({ id: Type.String(), status: Type.Literal('created') });
export type SubmittedQuery = Static<typeof SubmittedQuery>;

export const CanceledQuery = Type.Object({
  id: Type.String(),
  status: Status,
  error: Type.Union([Type.String(), Type.Null()]),
  error_details: Type.Union([ErrorDetails, Type.Null()]),
});
export type CanceledQuery = Static<typeof CanceledQuery>;

export type QuerySummary = Static<typeof QuerySummary>;
