import { PassThrough } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { parseId } from '../../core/ids.js';
import type { QueryService } from '../../service/query-service.js';
import { principal } from '../plugins/authentication.js';
import { errors, TAGS } from '../route-docs.js';
import { IdParams } from '../../wire/common.js';
import type { QueryEvent } from '../../wire/query-events.js';

export interface QueryEventRoutesOptions {
  /** A comment line (`: ping`) this often keeps proxies from closing a quiet stream (QRUN_SSE_HEARTBEAT_SECONDS). */
  heartbeatSeconds: number;
}

const DESCRIPTION = [
  'Server-Sent Events (`text/event-stream`) until the query ends, instead of polling. Each event is',
  '`event: <name>` and `data: <JSON>`:',
  '',
  '- `status` at once, `{"id", "status"}`, and again whenever the status changes;',
  '- `progress` while it runs, `{"id", "progress": {rows, pages, bytes, elapsed_ms}}`, when more was stored;',
  '- last, exactly one of `done`, `{"id", "status": "done", "count", "truncated", "expires", "links":',
  '  {"first": "/api/queries/<id>"}}` (GET that link for the first page), or `failed`, `{"id", "status":',
  '  "failed", "error", "error_details"}`; then the server ends the stream.',
  '',
  'Lines starting with `:` are heartbeats (`: ping`, every 15 s). Works across api processes: the worker that',
  'finishes the query may be another process. Only the creator may follow a query (404 otherwise). Streams',
  "count against the key's long-poll limit (QRUN_MAX_WAITS_PER_KEY); beyond it the stream is the one `status`",
  'event. EventSource reconnects when a stream ends: close it on `done` or `failed`.',
].join('\n');

/** `GET /api/queries/{id}/events`: a query's events as Server-Sent Events (the service decides what happens). */
export const queryEventRoutes =
  (queries: QueryService, options: QueryEventRoutesOptions): FastifyPluginAsyncTypebox =>
  async (app) => {
    /**
     * Streams open in this server, each with the promise of its end: closing the server ends them (they would
     * hold it open until their query ends).
     */
    const open = new Map<AbortController, Promise<void>>();
    app.addHook('preClose', async () => {
      for (const controller of open.keys()) controller.abort();
      await Promise.all(open.values());
    });

    app.get(
      '/api/queries/:id/events',
      {
        schema: {
          tags: [TAGS.queryRunner],
          operationId: 'followQueryEvents',
          summary: 'Follow a query as Server-Sent Events',
          description: DESCRIPTION,
          params: IdParams,
          response: {
            200: {
              description: 'The event stream.',
              content: {
                'text/event-stream': {
                  schema: Type.String({
                    examples: [
                      'event: status\ndata: {"id":"43d8…","status":"running"}\n\n' +
                        'event: done\ndata: {"id":"43d8…","status":"done","count":2500,"truncated":false,' +
                        '"expires":"2026-11-29T10:00:00Z","links":{"first":"/api/queries/43d8…"}}\n\n',
                    ],
                  }),
                },
              },
            },
            ...errors(
              400,
              401,
              { 404: 'No such query of yours, or its result has expired (`expired`).' },
              429,
            ),
          },
        },
      },
      async (req, reply) => {
        const id = parseId(req.params.id, 'query id');
        const controller = new AbortController();
        // 404 (not the creator's, or no such query) and 404 expired come here, as JSON, before any event.
        const events = await queries.events(principal(req), id, controller.signal);
        reply
          .header('content-type', 'text/event-stream; charset=utf-8')
          .header('cache-control', 'no-store')
          // The connection ends with the stream: a kept-alive socket would hold a closing server open.
          .header('connection', 'close')
          // nginx and the like would otherwise buffer the stream.
          .header('x-accel-buffering', 'no');
        // The schema documents the stream's text; what is sent is the stream itself.
        const send = (payload?: unknown) => (reply as FastifyReply).send(payload);
        if (req.method === 'HEAD') return send();
        const out = new PassThrough();
        // The client went away (or the response ended): the stream stops waiting and lets everything go.
        reply.raw.once('close', () => controller.abort());
        const piping = pipeEvents(events, out, options.heartbeatSeconds * 1000, req.log).finally(() =>
          open.delete(controller),
        );
        open.set(controller, piping);
        return send(out);
      },
    );
  };

/** Writes the events as SSE frames, with heartbeats, and ends the response after the last one. */
async function pipeEvents(
  events: AsyncIterable<QueryEvent>,
  out: PassThrough,
  heartbeatMs: number,
  log: FastifyBaseLogger,
): Promise<void> {
  const write = (text: string) => {
    if (!out.destroyed && !out.writableEnded) out.write(text);
  };
  const heartbeat = setInterval(() => write(': ping\n\n'), heartbeatMs);
  try {
    for await (const e of events) write(frame(e));
  } catch (err) {
    // The metadata store went away under the stream: end it; the client reads the status again.
    log.warn({ err }, 'event stream ended early');
  } finally {
    clearInterval(heartbeat);
    if (!out.destroyed && !out.writableEnded) out.end();
  }
}

/** One event: its name and its data as one line of JSON (JSON text never holds a raw line break). */
export function frame(e: QueryEvent): string {
  const data = e.event === 'done' ? { ...e.data, links: { first: `/api/queries/${e.data.id}` } } : e.data;
  return `event: ${e.event}\ndata: ${JSON.stringify(data)}\n\n`;
}
