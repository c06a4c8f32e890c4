import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { badRequest } from '../../core/errors.js';
import { parseId } from '../../core/ids.js';
import { parseIdempotencyKey } from '../../service/idempotency.js';
import type { QueryResultView, QueryService } from '../../service/query-service.js';
import { principal } from '../plugins/authentication.js';
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
    const tags = ['queries'];
    app.post(
      '/api/connections/:id/query',
      {
        schema: {
          tags,
          summary: 'Submit a query; returns at once with its id',
          params: IdParams,
          querystring: Type.Object({ query: Type.Optional(Type.String()) }),
          body: SubmitBody,
          headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String()) }),
          response: { 200: Envelope(SubmittedQuery) },
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
          summary: 'Status, and one page of the result once done',
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
          response: { 200: Type.Object({ data: QueryResult, links: Type.Optional(Links) }) },
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
          summary: 'Stop a query on the database; it ends failed with error "canceled"',
          params: IdParams,
          response: {
            200: Envelope(CanceledQuery),
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
          summary: "The caller's own queries, newest first",
          querystring: Type.Object({
            limit: Type.Optional(Type.String()),
            cursor: Type.Optional(Type.String()),
          }),
          response: {
            200: Type.Object({
              data: Type.Array(QuerySummary),
              links: Type.Object({ next: Type.Union([Type.String(), Type.Null()]) }),
            }),
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
