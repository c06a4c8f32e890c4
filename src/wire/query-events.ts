import { Type, type Static } from 'typebox';
import { ErrorDetails, Progress, Status } from './queries.js';
import { Timestamp } from './common.js';

/**
 * `GET /api/queries/{id}/events`: Server-Sent Events, one JSON object per event's `data`. The stream
 * starts with `status`, may carry `progress` and further `status` events while the query runs, and ends
 * with exactly one `done` or `failed`, after which the server closes it. Lines starting with `:` are
 * heartbeats (`: ping`), which EventSource ignores.
 */
export const StatusEvent = Type.Object({ id: Type.String(), status: Status });
export type StatusEvent = Static<typeof StatusEvent>;

export const ProgressEvent = Type.Object({
  id: Type.String(),
  progress: Progress,
});
export type ProgressEvent = Static<typeof ProgressEvent>;

export const DoneEvent = Type.Object({
  id: Type.String(),
  status: Type.Literal('done'),
  count: Type.Integer({ description: 'Rows in the whole result.' }),
  truncated: Type.Boolean(),
  expires: Timestamp,
  links: Type.Object({
    first: Type.String({ description: "The first page's URL: GET it, then follow links.next." }),
  }),
});
export type DoneEvent = Static<typeof DoneEvent>;

export const FailedEvent = Type.Object({
  id: Type.String(),
  status: Type.Literal('failed'),
  error: Type.String(),
  error_details: Type.Union([ErrorDetails, Type.Null()]),
});
export type FailedEvent = Static<typeof FailedEvent>;

/** An event as the service hands it to the HTTP layer, which frames it (and adds the link of `done`). */
export type QueryEvent =
  | { event: 'status'; data: StatusEvent }
  | { event: 'progress'; data: ProgressEvent }
  | { event: 'done'; data: Omit<DoneEvent, 'links'> }
  | { event: 'failed'; data: FailedEvent };
