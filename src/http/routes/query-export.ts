import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { Principal } from '../../auth/principal.js';
import { conflict } from '../../core/errors.js';
import { parseId } from '../../core/ids.js';
import type { PageFrame } from '../../encoding/page-frame.js';
import { exportResult } from '../../export/export-result.js';
import { EXPORT_FORMATS, FORMAT_INFO, parseExportOptions } from '../../export/export-formats.js';
import type { ColumnSchema, StoredResult } from '../../export/stored-rows.js';
import type { FinishedResult, QueryService } from '../../service/query-service.js';
import { IdParams } from '../../wire/common.js';
import { principal } from '../plugins/authentication.js';
import { errors, TAGS } from '../route-docs.js';

const DESCRIPTION = [
  'Downloads the whole result of a finished (`done`) query as one file, streamed page after page (the server',
  'holds one stored page at a time, whatever the size of the result).',
  '',
  '- `csv`, `tsv`: RFC 4180 (CRLF line ends), a header row of `fields` unless `header=false`, NULL as an empty',
  '  field and an empty string as `""`; values as `GET /api/queries/{id}` has them (integers and decimals digit',
  '  for digit, JSON and arrays as JSON text). `delimiter` sets the separator.',
  '- `ndjson`: one row object per line, exactly as in `results`; `json`: one array of those objects.',
  '- `parquet`, `arrow` (Arrow IPC stream format): typed columns from `schema`: 64-bit integers, decimals',
  '  with their precision and scale where the type gives them (otherwise text), doubles, booleans, dates,',
  '  timestamps (time zone aware ones in UTC), binary, lists; JSON, intervals and other types as text. A',
  '  column whose values do not all fit its type exactly (SQLite) is exported as text.',
  '',
  'Text formats are gzip-compressed when `Accept-Encoding` allows it. Only the user who submitted the query',
  'may export it (anyone else gets `404`). A query that is not done yet, or failed, answers `409`; an expired',
  'one `404` with key `expired`. An error after the download has started cuts the connection, so a partial',
  'file never looks complete.',
].join('\n');

const EMPTY_FRAME: PageFrame = { head: Buffer.alloc(0), tail: Buffer.alloc(0) };

/** Which content types the 200 may have, for the OpenAPI document. */
/** What the text formats look like for a two-row result (the binary ones are Arrow IPC and Parquet files). */
const EXAMPLES: Partial<Record<(typeof EXPORT_FORMATS)[number], string>> = {
  csv: 'id,name\r\n1,Ada\r\n2,Grace\r\n',
  tsv: 'id\tname\r\n1\tAda\r\n2\tGrace\r\n',
  ndjson: '{"id":1,"name":"Ada"}\n{"id":2,"name":"Grace"}\n',
  json: '[\n{"id":1,"name":"Ada"},\n{"id":2,"name":"Grace"}\n]\n',
};

const CONTENT = Object.fromEntries(
  EXPORT_FORMATS.map((f) => [
    FORMAT_INFO[f].contentType.split(';')[0]!,
    {
      schema: Type.String({
        description: `format=${f}`,
        ...(EXAMPLES[f] === undefined ? {} : { examples: [EXAMPLES[f]] }),
      }),
    },
  ]),
);

/** `GET /api/queries/{id}/export`: the whole stored result in one download (src/export/ writes it). */
export const queryExportRoutes =
  (queries: QueryService): FastifyPluginAsyncTypebox =>
  async (app) => {
    /**
     * Downloads under way. Closing the server cuts them: a client that stops reading would otherwise hold
     * a closing server open for as long as it likes (a cut download never looks complete: see below).
     */
    const open = new Set<ServerResponse>();
    app.addHook('preClose', async () => {
      for (const response of open) response.destroy();
    });

    app.get(
      '/api/queries/:id/export',
      {
        schema: {
          tags: [TAGS.queryRunner],
          operationId: 'exportQueryResult',
          summary: 'Export a whole query result',
          description: DESCRIPTION,
          params: IdParams,
          querystring: Type.Object({
            format: Type.Optional(
              Type.String({
                description: `The file format: ${EXPORT_FORMATS.join(', ')}.`,
                examples: ['csv'],
              }),
            ),
            header: Type.Optional(
              Type.String({
                description: 'csv/tsv only: `false` leaves out the header row (default `true`).',
              }),
            ),
            delimiter: Type.Optional(
              Type.String({
                description:
                  'csv/tsv only: the field separator, one character other than `"`, CR or LF (default `,`; a tab for tsv).',
              }),
            ),
          }),
          response: {
            200: {
              description:
                'The file, as an attachment named `<id>.<extension>` (`csv`, `tsv`, `ndjson`, `json`, `parquet`, ' +
                '`arrows`); gzip-encoded for text formats when the client accepts it.',
              content: CONTENT,
            },
            ...errors(
              {
                400: 'The id, `format`, `header` or `delimiter` is invalid; `message` says what is accepted.',
              },
              401,
              {
                404: 'No such query of yours (`not_found`), or its result has expired (`expired`, with when).',
              },
              {
                409: 'The query has not finished (`query_not_done`) or failed (`query_failed`): there is no result to export.',
              },
              429,
            ),
          },
        },
      },
      async (req, reply) => {
        const id = parseId(req.params.id, 'query id');
        const options = parseExportOptions(req.query);
        const controller = new AbortController();
        const result = await openResult(queries, principal(req), id, controller.signal);
        const download = exportResult(result, options);
        const gzip = download.text && acceptsGzip(req.headers['accept-encoding']);
        reply
          .header('content-type', download.contentType)
          .header('content-disposition', `attachment; filename="${download.fileName}"`)
          .header('cache-control', 'no-store')
          .header('x-content-type-options', 'nosniff');
        if (download.text) reply.header('vary', 'Accept-Encoding');
        if (gzip) reply.header('content-encoding', 'gzip');
        const send = (payload?: unknown) => (reply as FastifyReply).send(payload);
        if (req.method === 'HEAD') return send();
        // The client went away (or the server cut it): stop reading pages (the stream's teardown ends the writer).
        open.add(reply.raw);
        reply.raw.once('close', () => {
          open.delete(reply.raw);
          controller.abort();
        });
        const source = Readable.from(download.chunks, { objectMode: false, highWaterMark: 64 * 1024 });
        if (!gzip) return send(source);
        const zipped = createGzip();
        pipeline(source, zipped).catch((err: unknown) => {
          req.log.warn({ err, queryId: id }, 'export stopped');
        });
        return send(zipped);
      },
    );
  };

/**
 * The finished result behind an export, read through QueryService.get like GET /api/queries/{id}: the
 * same owner check (404), the same expiry (404 `expired`), and each page from the result store in turn by
 * its signed token. Not done yet or failed: 409.
 */
async function openResult(
  queries: QueryService,
  p: Principal,
  id: string,
  signal: AbortSignal,
): Promise<StoredResult> {
  let first: FinishedResult | undefined;
  const view = await queries.get(p, id, undefined, undefined, (r) => {
    first = r;
    return EMPTY_FRAME;
  });
  switch (view.status) {
    case 'created':
    case 'running':
      throw conflict(
        'query_not_done',
        `The query is still ${view.status}, so there is no result to export yet; wait until its status is ` +
          `done (GET /api/queries/${id}?wait=60) and export it then.`,
      );
    case 'failed':
      throw conflict('query_failed', `The query failed, so it has no result to export: ${view.error}`);
  }
  const finished = first!;
  let firstPage: Buffer | undefined = view.body;
  return {
    id,
    fields: JSON.parse(finished.fieldsJson) as string[],
    schema: JSON.parse(finished.schemaJson) as ColumnSchema[],
    count: finished.count,
    async *pages() {
      // Page 0 was read to answer the checks above: the first pass uses it, later passes read it again.
      let page = firstPage ?? (await readPage(queries, p, id, undefined, signal)).body;
      let next = finished.nextPage;
      firstPage = undefined;
      for (;;) {
        yield page;
        if (next === null) return;
        const read = await readPage(queries, p, id, next, signal);
        page = read.body;
        next = read.next;
      }
    },
  };
}

async function readPage(
  queries: QueryService,
  p: Principal,
  id: string,
  token: string | undefined,
  signal: AbortSignal,
): Promise<{ body: Buffer; next: string | null }> {
  signal.throwIfAborted();
  let next: string | null = null;
  const view = await queries.get(p, id, token, undefined, (r) => {
    next = r.nextPage;
    return EMPTY_FRAME;
  });
  // A finished query stays finished; anything else here is its result going away mid-export.
  if (view.status !== 'done') throw new Error(`query ${id} is ${view.status} in the middle of its export`);
  return { body: view.body, next };
}

/** Whether Accept-Encoding allows gzip (`gzip`, `x-gzip` or `*`, with a q-value above 0). */
export function acceptsGzip(header: string | string[] | undefined): boolean {
  const value = Array.isArray(header) ? header.join(',') : (header ?? '');
  let gzip: number | undefined;
  let any: number | undefined;
  for (const part of value.split(',')) {
    const [name = '', ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((s) => s.trim()).find((s) => s.startsWith('q='));
    const weight = q === undefined ? 1 : Number(q.slice(2));
    const w = Number.isFinite(weight) ? weight : 0;
    if (name === 'gzip' || name === 'x-gzip') gzip = w;
    else if (name === '*') any = w;
  }
  return (gzip ?? any ?? 0) > 0;
}
