import { badRequest } from '../core/errors.js';

/**
 * The formats of GET /api/queries/{id}/export and their options. Validation throws the contract's 400s,
 * each naming the parameter and what it accepts.
 */
export const EXPORT_FORMATS = ['csv', 'tsv', 'ndjson', 'json', 'parquet', 'arrow'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface FormatInfo {
  /** The file name's extension. */
  extension: string;
  contentType: string;
  /** Text formats are gzipped when the client accepts it; Parquet and Arrow are binary (and compact). */
  text: boolean;
}

export const FORMAT_INFO: Readonly<Record<ExportFormat, FormatInfo>> = {
  csv: { extension: 'csv', contentType: 'text/csv; charset=utf-8; header=present', text: true },
  tsv: { extension: 'tsv', contentType: 'text/tab-separated-values; charset=utf-8', text: true },
  ndjson: { extension: 'ndjson', contentType: 'application/x-ndjson', text: true },
  json: { extension: 'json', contentType: 'application/json; charset=utf-8', text: true },
  parquet: { extension: 'parquet', contentType: 'application/vnd.apache.parquet', text: false },
  arrow: { extension: 'arrows', contentType: 'application/vnd.apache.arrow.stream', text: false },
};

export interface ExportOptions {
  format: ExportFormat;
  /** CSV/TSV: whether the first line names the columns (default true). */
  header: boolean;
  /** CSV/TSV: the field separator (default `,` for csv, a tab for tsv). */
  delimiter: string;
}

/** The query string of an export request, as it came. */
export interface ExportQuery {
  format?: string;
  header?: string;
  delimiter?: string;
}

/** Checks an export request's parameters; every bad value is a 400 naming the parameter. */
export function parseExportOptions(query: ExportQuery): ExportOptions {
  const format = query.format;
  if (format === undefined || format === '') {
    throw badRequest(
      'format_required',
      `Say which format to export with ?format=; one of ${EXPORT_FORMATS.join(', ')}.`,
      { field: 'query.format' },
    );
  }
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw badRequest(
      'invalid_format',
      `format must be one of ${EXPORT_FORMATS.join(', ')} (lower case), not ${JSON.stringify(format)}.`,
      { field: 'query.format' },
    );
  }
  const chosen = format as ExportFormat;
  const delimited = chosen === 'csv' || chosen === 'tsv';
  if (!delimited && (query.header !== undefined || query.delimiter !== undefined)) {
    const name = query.header !== undefined ? 'header' : 'delimiter';
    throw badRequest(
      `invalid_${name}`,
      `${name} applies only to format=csv and format=tsv; leave it out for format=${chosen}.`,
      { field: `query.${name}` },
    );
  }
  let header = true;
  if (query.header !== undefined) {
    if (query.header !== 'true' && query.header !== 'false') {
      throw badRequest(
        'invalid_header',
        `header must be true or false, not ${JSON.stringify(query.header)}.`,
        { field: 'query.header' },
      );
    }
    header = query.header === 'true';
  }
  let delimiter = chosen === 'tsv' ? '\t' : ',';
  if (query.delimiter !== undefined) {
    const d = query.delimiter;
    // One character (a code point), not one that quoting or line breaks need.
    if ([...d].length !== 1 || d === '"' || d === '\r' || d === '\n') {
      throw badRequest(
        'invalid_delimiter',
        'delimiter must be exactly one character other than a double quote, CR or LF ' +
          `(URL-encode it, e.g. %3B for ";" or %09 for a tab), not ${JSON.stringify(d)}.`,
        { field: 'query.delimiter' },
      );
    }
    delimiter = d;
  }
  return { format: chosen, header, delimiter };
}

/** `Content-Disposition` for the download: `<query id>.<extension>` (ids are UUIDs: no quoting issues). */
export function exportFileName(id: string, format: ExportFormat): string {
  return `${id}.${FORMAT_INFO[format].extension}`;
}
