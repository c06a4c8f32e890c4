import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { badRequest } from '../../core/errors.js';
import { parseId } from '../../core/ids.js';
import { parseIdempotencyKey } from '../../service/idempotency.js';
import type { QueryResultView, QueryService } from '../../service/query-service.js';
import { principal } from '../plugins/authentication.js';
import { errors, TAGS } from '../route-docs.js';
import { resultEnvelope } from '../result-envelope.js';
import { Envelope, IdParams } from '../../wire/common.js';
import {
  CanceledQuery,
  Links,
  QueryResult,
  QuerySummary,
  SubmitBody,
  SubmittedQuery,
} from '../../wire/queries.js';

const QUERY_ID = '43d8a2f6-58c5-4b5e-9d0b-2b1c4e3f6a70';

// Polytomic's own words for the two operations of its Query Runner API, where they hold for qrun too.
const RUN_QUERY = [
  'Submits a query for asynchronous execution against the connection.',
  '',
  'This endpoint returns immediately with a query task ID. It does not wait for the query to finish. Poll',
  '`GET /api/queries/{id}` until `status` reaches `done` or `failed` (or add `?wait=N` to long-poll, or follow',
  '`GET /api/queries/{id}/events`, or give a `callback_url`).',
  '',
  'Only the user who created the query can fetch its results later. Query results are stored temporarily and',
  'expire; use the `expires` field from the result endpoint to understand how long they will remain available.',
  '',
  'qrun extensions, all optional: `parameters`, `timeout_seconds`, `max_rows`, `page_rows`, `callback_url` and',
  'the `Idempotency-Key` header.',
].join('\n');

const GET_QUERY = [
  'Fetches the latest status for a submitted query and, once complete, returns fields and paginated results.',
  '',
  'Results may be paginated across multiple pages. When that happens, use the opaque `links.next` and',
  '`links.previous` URLs exactly as returned. Do not try to construct the `page` token yourself.',
  '',
  'If the query is still running, the response includes only status metadata (with `queue_position` while it',
  'waits and `progress` while it runs). A failed query carries `error` and `error_details`. If the caller is',
  'not the user that created it, the endpoint returns `404`; once its result has expired, `404` with key',
  '`expired`. Values are exact: 64-bit integers and decimals beyond what a JSON number holds come as strings',
  '(`schema` gives each column’s type).',
].join('\n');

const GET_QUERY_EXAMPLE = {
  data: {
    id: QUERY_ID,
    status: 'done',
    fields: ['id', 'name'],
    schema: [
      { name: 'id', type: 'int8' },
      { name: 'name', type: 'text' },
    ],
    count: 2,
    truncated: false,
    expires: '2026-12-01T10:00:00Z',
    results: [
      { id: 1, name: 'Ada' },
      { id: 2, name: 'Grace' },
    ],
    error: null,
  },
  links: { next: null, previous: null },
};

const LIST_EXAMPLE = {
  data: [
    {
      id: QUERY_ID,
      status: 'done',
      connection_id: '0b6f8e62-4f1d-4c55-8a3e-7d9c2b1a0e44',
      query: 'select id, name from users',
      count: 2,
      error: null,
      error_details: null,
      created_at: '2026-11-30T10:00:00Z',
      started_at: '2026-11-30T10:00:00Z',
      finished_at: '2026-11-30T10:00:01Z',
      expires: '2026-12-01T10:00:01Z',
    },
  ],
  links: { next: null },
};

/** Whole numbers in a query string, checked by hand so the message can name the parameter. */
function queryInt(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,9}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw badRequest(`invalid_${name}`, `${name} must be a whole number from ${min} to ${max}.`, {
      field: `query.${name}`,
    });
  }
  return Number(value);
}

/** A finished result's body comes ready-made (the stored page spliced in, see result-envelope.ts). */
function sendResult(reply: FastifyReply, view: QueryResultView): FastifyReply {
  reply.type('application/json; charset=utf-8');
  return reply.send(view.status === 'done' ? view.body : JSON.stringify({ data: view }));
}

export const queryRoutes =
  (queries: QueryService): FastifyPluginAsyncTypebox =>
  async (app) => {
    const tags = [TAGS.queryRunner];
    app.post(
      '/api/connections/:id/query',
      {
        schema: {
          tags,
          operationId: 'runQuery',
          summary: 'Run a query',
          description: RUN_QUERY,
          params: IdParams,
          querystring: Type.Object({
            query: Type.Optional(
              Type.String({ description: 'The SQL, as Polytomic’s SDKs send it (or `query` in the body).' }),
            ),
          }),
          body: SubmitBody,
          headers: Type.Object({
            'idempotency-key': Type.Optional(
              Type.String({
                description:
                  'Makes a retried submit safe: the same key within 24 hours returns the first outcome.',
              }),
            ),
          }),
          response: {
            200: Envelope(SubmittedQuery, {
              examples: [{ data: { id: QUERY_ID, status: 'created' } }],
            }),
            ...errors(
              { 400: 'The SQL is missing or a field is invalid; `message` names it. Nothing was created.' },
              401,
              { 404: 'No such connection in your organization.' },
              429,
              503,
            ),
          },
        },
        // The official SDK sends the SQL as ?query= with an empty body (or none): no body means {}.
        preValidation: async (req) => {
          req.body ??= {};
        },
      },
      async (req, reply) => {
        const connectionId = parseId(req.params.id, 'connection id');
        const body = req.body ?? {};
        const result = await queries.submit(principal(req), {
          connectionId,
          bodyQuery: body.query,
          urlQuery: req.query.query,
          parameters: body.parameters,
          timeoutSeconds: body.timeout_seconds,
          maxRows: body.max_rows,
          callbackUrl: body.callback_url,
          pageRows: body.page_rows,
          idempotencyKey: parseIdempotencyKey(req.headers['idempotency-key']),
        });
        // An idempotent replay returns the first request's outcome, so the body is the same.
        return reply.code(200).send({ data: result });
      },
    );

    app.get(
      '/api/queries/:id',
      {
        schema: {
          tags,
          operationId: 'getQuery',
          summary: 'Get query results',
          description: GET_QUERY,
          params: IdParams,
          querystring: Type.Object({
            page: Type.Optional(
              Type.String({ description: 'Opaque token from links.next / links.previous.' }),
            ),
            wait: Type.Optional(
              Type.String({
                description: 'Long-poll up to this many seconds (max 60) for a terminal status.',
              }),
            ),
          }),
          response: {
            200: Type.Object(
              { data: QueryResult, links: Type.Optional(Links) },
              {
                description: 'The status; once done, one page of the result and links to the others.',
                examples: [GET_QUERY_EXAMPLE],
              },
            ),
            ...errors(
              { 400: 'The id, `page` or `wait` is invalid.' },
              401,
              {
                404: 'No such query of yours (`not_found`), or its result has expired (`expired`, with when).',
              },
              429,
            ),
          },
        },
      },
      async (req, reply) => {
        const id = parseId(req.params.id, 'query id');
        const wait = queryInt(req.query.wait, 'wait', 0, 60);
        const view = await queries.get(principal(req), id, req.query.page, wait, resultEnvelope);
        return sendResult(reply, view);
      },
    );

    app.post(
      '/api/queries/:id/cancel',
      {
        schema: {
          tags,
          operationId: 'cancelQuery',
          summary: 'Cancel a query',
          description:
            'Stops a waiting or running query on the database itself (the statement is killed, not just ' +
            'forgotten); it ends `failed` with error `canceled`. A query that has already ended is returned as ' +
            'it is. Only the user who submitted it may cancel it.',
          params: IdParams,
          response: {
            200: Envelope(CanceledQuery, {
              examples: [
                {
                  data: {
                    id: QUERY_ID,
                    status: 'failed',
                    error: 'canceled',
                    error_details: { code: 'canceled', sqlstate: null, retryable: false, position: null },
                  },
                },
              ],
            }),
            ...errors(400, 401, { 404: 'No such query of yours.' }, 429),
          },
        },
      },
      async (req) => ({ data: await queries.cancel(principal(req), parseId(req.params.id, 'query id')) }),
    );

    app.get(
      '/api/queries',
      {
        schema: {
          tags,
          operationId: 'listQueries',
          summary: 'List your queries',
          description:
            'The queries you submitted, newest first, with status, row count and the start of their SQL ' +
            '(`query`, at most 1,000 characters). Follow `links.next` for older ones.',
          querystring: Type.Object({
            limit: Type.Optional(Type.String({ description: 'Queries per page, 1 to 200 (default 50).' })),
            cursor: Type.Optional(Type.String({ description: 'Opaque token from `links.next`.' })),
          }),
          response: {
            200: Type.Object(
              {
                data: Type.Array(QuerySummary),
                links: Type.Object({ next: Type.Union([Type.String(), Type.Null()]) }),
              },
              { description: 'One page of your queries.', examples: [LIST_EXAMPLE] },
            ),
            ...errors({ 400: '`limit` or `cursor` is invalid.' }, 401, 429),
          },
        },
      },
      async (req) => {
        const limit = queryInt(req.query.limit, 'limit', 1, 200) ?? 50;
        const { items, next } = await queries.list(principal(req), limit, req.query.cursor);
        return {
          data: items,
          links: {
            next: next === null ? null : `/api/queries?limit=${limit}&cursor=${encodeURIComponent(next)}`,
          },
        };
      },
    );
  };
