import { conflict } from '../core/errors.js';
import { csvChunks } from './csv-writer.js';
import { exportFileName, FORMAT_INFO, type ExportOptions } from './export-formats.js';
import { jsonChunks, ndjsonChunks } from './ndjson-writer.js';
import type { StoredResult } from './stored-rows.js';

/** A whole-result download, ready to stream: what it is, and its bytes in order. */
export interface ResultExport {
  contentType: string;
  fileName: string;
  /** Whether it is text (the HTTP layer may gzip it). */
  text: boolean;
  /** The bytes, produced as they are read: one stored page in memory at a time. */
  chunks: AsyncIterable<Uint8Array>;
}

/**
 * The export of a finished result in the chosen format. Checks that need no data happen here, before
 * anything is sent; a failure while streaming ends the download early (the HTTP layer breaks the
 * connection, so a client never mistakes a cut file for a whole one).
 */
export function exportResult(result: StoredResult, options: ExportOptions): ResultExport {
  const info = FORMAT_INFO[options.format];
  if (options.format === 'parquet' && result.fields.length === 0) {
    throw conflict(
      'export_no_columns',
      'This result has no columns (the statement returned no result set), and a Parquet file needs at ' +
        'least one; export it as csv, ndjson, json or arrow instead.',
    );
  }
  // RFC 4180's optional `header` parameter says whether the first line names the columns.
  const contentType =
    options.format === 'csv' && !options.header
      ? info.contentType.replace('header=present', 'header=absent')
      : info.contentType;
  return {
    contentType,
    fileName: exportFileName(result.id, options.format),
    text: info.text,
    chunks: chunksOf(result, options),
  };
}

function chunksOf(result: StoredResult, options: ExportOptions): AsyncIterable<Uint8Array> {
  switch (options.format) {
    case 'csv':
    case 'tsv':
      return csvChunks(result, options);
    case 'ndjson':
      return ndjsonChunks(result);
    case 'json':
      return jsonChunks(result);
    // apache-arrow and DuckDB cost a server ~20 MB of memory once loaded: only when someone exports so.
    case 'arrow':
      return lazyChunks(async () => (await import('./arrow-writer.js')).arrowChunks(result));
    case 'parquet':
      return lazyChunks(async () => (await import('./parquet-writer.js')).parquetChunks(result));
  }
}

/** The chunks of a writer whose module is loaded when the first chunk is asked for. */
async function* lazyChunks(load: () => Promise<AsyncIterable<Uint8Array>>): AsyncIterable<Uint8Array> {
  yield* await load();
}
