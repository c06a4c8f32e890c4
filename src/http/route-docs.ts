import { Type, type TSchema } from 'typebox';

/**
 * What the OpenAPI document (/api/openapi.json, shown at /api/docs) says beyond the schemas: tag names in
 * reading order, and the error responses each route lists. Each route states its own summary, description,
 * operationId and examples next to its schemas; `npm run lint:openapi` (redocly's recommended rules) and
 * test/integration/openapi.test.ts keep every operation documented.
 */

/** Tags in the order /api/docs shows them: the query runner first, the operator's routes last. */
export const TAGS = Object.freeze({
  queryRunner: 'Query runner',
  connections: 'Connections',
  identity: 'Identity',
  webhooks: 'Webhooks',
  organizations: 'Organizations',
  users: 'Users',
  keys: 'API keys',
  operations: 'Operations',
} as const);

export const TAG_DESCRIPTIONS: ReadonlyArray<{ name: string; description: string }> = [
  {
    name: TAGS.queryRunner,
    description:
      'Run SQL on a stored connection and read the result: submit (returns at once with an id), then poll ' +
      '`GET /api/queries/{id}` until `status` is `done` or `failed`, and follow `links.next` through the pages. ' +
      'Wire-compatible with Polytomic’s Query Runner API.',
  },
  { name: TAGS.connections, description: 'Stored database connections of the caller’s organization.' },
  { name: TAGS.identity, description: 'Who the API key belongs to.' },
  { name: TAGS.webhooks, description: 'The signing secret for query callbacks (`callback_url`).' },
  {
    name: TAGS.organizations,
    description: 'Tenants of this qrun server. The partner key only (`QRUN_PARTNER_KEY`).',
  },
  { name: TAGS.users, description: 'Users of an organization. The partner key only.' },
  { name: TAGS.keys, description: 'API keys of users and organizations. The partner key only.' },
  {
    name: TAGS.operations,
    description: 'Health, readiness and Prometheus metrics for the operator; no API key, no envelope.',
  },
];

/** What each error status means on this API; the body is always the contract's `Error`. */
const ERROR_MEANINGS = {
  400: 'The request is invalid; `key` names what (for example `invalid_id`, `invalid_request`) and `message` says how to fix it. Nothing was changed.',
  401: 'No valid API key was sent (`unauthorized`).',
  403: 'The key is valid, but its role may not do this (`forbidden`).',
  404: 'No such resource for this caller (`not_found`); another organization’s resources answer the same.',
  409: 'The resource is not in a state that allows this.',
  413: 'The request body is larger than this server accepts (`payload_too_large`).',
  429: 'Too many requests or queries: rate limit, queue or concurrency limit. `Retry-After` says when to try again.',
  503: 'The server cannot take this now (queue full, storage short); `Retry-After` says when to try again.',
} as const;

export type ErrorStatus = keyof typeof ERROR_MEANINGS;

/**
 * Error responses for a route's `response` schema: each the shared `Error` schema with the status's meaning,
 * or a route's own wording (`{404: 'No such connection in your organization.'}`).
 */
export function errors(
  ...statuses: Array<ErrorStatus | Partial<Record<ErrorStatus, string>>>
): Record<number, TSchema> {
  const out: Record<number, TSchema> = {};
  for (const entry of statuses) {
    const pairs: Array<[ErrorStatus, string]> =
      typeof entry === 'number'
        ? [[entry, ERROR_MEANINGS[entry]]]
        : (Object.entries(entry) as Array<[`${ErrorStatus}`, string]>).map(([s, text]) => [
            Number(s) as ErrorStatus,
            text,
          ]);
    for (const [status, description] of pairs) {
      out[status] = Type.Unsafe({ $ref: 'Error', description });
    }
  }
  return out;
}

/** A 204 answer: no body. */
export function noContent(description: string): TSchema {
  return Type.Null({ description });
}
