import pc from 'picocolors';
import { ApiError, type ApiClient } from '../api-client.js';
import { CliError, EXIT, usageError } from '../exit-codes.js';
import type { Sink } from '../commands/shared.js';
import { EXPORT_ONLY, rowFormatter, type Format } from './formats.js';
import { renderTable } from './table.js';
import type { Column, Row } from './values.js';

/** GET /api/queries/{id} (or a page of it), parsed losslessly. */
export interface QueryEnvelope {
  data: {
    id: string;
    status: string;
    fields?: string[];
    schema?: { name: string; type: string }[];
    count?: unknown;
    truncated?: boolean;
    expires?: string;
    results?: Row[];
    error?: string | null;
    error_details?: unknown;
    [key: string]: unknown;
  };
  links?: { next?: string | null; previous?: string | null };
}

export function columnsOf(data: QueryEnvelope['data']): Column[] {
  if (data.schema && data.schema.length > 0) return data.schema.map((c) => ({ name: c.name, type: c.type }));
  return (data.fields ?? []).map((name) => ({ name }));
}

/** Every page of a finished result, from the first (already read) by following links.next. */
export async function* pages(
  api: ApiClient,
  first: QueryEnvelope,
  signal?: AbortSignal,
): AsyncGenerator<Row[]> {
  yield first.data.results ?? [];
  let next = first.links?.next;
  while (next) {
    const page = await api.json<QueryEnvelope>('GET', next, { signal });
    yield page.data.results ?? [];
    next = page.links?.next;
  }
}

export interface OutputOptions {
  format: Format;
  header?: boolean;
  delimiter?: string;
  signal?: AbortSignal;
}

/** Whether the API answered that it has no such endpoint (a server older than the export endpoint). */
function noSuchEndpoint(err: unknown): boolean {
  return err instanceof ApiError && err.status === 404 && /no endpoint|Route .* not found/i.test(err.message);
}

/**
 * Writes a finished query's whole result to the sink. csv, tsv, ndjson, json, parquet and arrow are the
 * server's export (GET /api/queries/{id}/export), streamed as it comes, so the CLI writes the same bytes
 * as the API's download; a server without that endpoint gets csv, tsv, ndjson and json made here from the
 * pages, the same way. A table is made here. Returns the rows written, where counted.
 */
export async function writeResult(
  api: ApiClient,
  first: QueryEnvelope,
  sink: Sink,
  options: OutputOptions,
): Promise<number | undefined> {
  const { format } = options;
  if (format === 'table') {
    const columns = columnsOf(first.data);
    const rows: Row[] = [];
    for await (const page of pages(api, first, options.signal)) rows.push(...page);
    const terminal = sink.isTerminal;
    const color = sink.isStdout && pc.isColorSupported && (terminal || Boolean(process.env.FORCE_COLOR));
    const columnsWide = terminal ? process.stdout.columns : undefined;
    await sink.write(renderTable(columns, rows, { maxWidth: columnsWide || undefined, color }));
    return rows.length;
  }
  try {
    await downloadExport(api, first.data.id, sink, options);
    return undefined;
  } catch (err) {
    if (!noSuchEndpoint(err)) throw err;
    if (format === 'parquet' || format === 'arrow') {
      throw new CliError(`this server has no export endpoint, needed for ${format}`, EXIT.failed);
    }
  }
  return writeLocally(api, first, sink, { ...options, format });
}

/** csv, tsv, ndjson or json made here from the pages. */
async function writeLocally(
  api: ApiClient,
  first: QueryEnvelope,
  sink: Sink,
  options: OutputOptions & { format: 'csv' | 'tsv' | 'ndjson' | 'json' },
): Promise<number> {
  const formatter = rowFormatter(options.format, columnsOf(first.data), {
    header: options.header,
    delimiter: options.delimiter,
  });
  let count = 0;
  await sink.write(formatter.start());
  for await (const page of pages(api, first, options.signal)) {
    count += page.length;
    await sink.write(formatter.rows(page));
  }
  await sink.write(formatter.end());
  return count;
}

/** GET /api/queries/{id}/export?format=…, streamed to the sink as it comes. */
export async function downloadExport(
  api: ApiClient,
  id: string,
  sink: Sink,
  options: OutputOptions,
): Promise<void> {
  if (EXPORT_ONLY.has(options.format) && sink.isTerminal) {
    throw usageError(`${options.format} is binary: write it to a file with -o, or pipe it`);
  }
  const params = new URLSearchParams({ format: options.format });
  if (options.header === false) params.set('header', 'false');
  if (options.delimiter !== undefined) params.set('delimiter', options.delimiter);
  const res = await api.raw('GET', `/api/queries/${id}/export?${params}`, {
    signal: options.signal,
    headers: { accept: '*/*' },
  });
  if (!res.body) return;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) await sink.write(chunk);
}
