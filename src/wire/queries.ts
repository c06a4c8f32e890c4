import { Type, type Static } from 'typebox';
import { TASK_STATUS, type TaskStatus } from '../core/task-status.js';
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
  },
  { additionalProperties: false },
);

/** The task states of src/core/task-status.ts, as the API shows them. */
export const Status = Type.Union([
  Type.Literal(TASK_STATUS.created),
  Type.Literal(TASK_STATUS.running),
  Type.Literal(TASK_STATUS.done),
  Type.Literal(TASK_STATUS.failed),
  Type.Literal(TASK_STATUS.unknown),
]);
// Every state and nothing else: this stops compiling if the two lists drift apart.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _sameStates: Same<Static<typeof Status>, TaskStatus> = true;

export const QueryResult = Type.Object({
  id: Type.String(),
  status: Status,
  fields: Type.Optional(Type.Array(Type.String())),
  schema: Type.Optional(Type.Array(Type.Object({ name: Type.String(), type: Type.String() }))),
  count: Type.Optional(Type.Integer({ description: 'Rows in the whole result, not this page.' })),
  truncated: Type.Optional(Type.Boolean({ description: 'true when max_rows cut the result short.' })),
  expires: Type.Optional(Timestamp),
  results: Type.Optional(Type.Array(Type.Record(Type.String(), Type.Unknown()))),
  error: Type.Optional(Type.Union([Type.String(), Type.Null()])),
});

export const Links = Type.Object({
  next: Type.Union([Type.String(), Type.Null()]),
  previous: Type.Union([Type.String(), Type.Null()]),
});

export const QuerySummary = Type.Object({
  id: Type.String(),
  status: Status,
  connection_id: Type.String(),
  query: Type.String(),
  count: Type.Union([Type.Integer(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
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
});
export type CanceledQuery = Static<typeof CanceledQuery>;

export type QuerySummary = Static<typeof QuerySummary>;
