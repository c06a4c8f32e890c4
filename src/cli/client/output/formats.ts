import path from 'node:path';
import { usageError } from '../exit-codes.js';
import { rowJson, valueText, type Column, type Row } from './values.js';

export const FORMATS = ['table', 'csv', 'tsv', 'ndjson', 'json', 'parquet', 'arrow'] as const;
export type Format = (typeof FORMATS)[number];

/** Formats that come from the server's export endpoint as they are (binary files). */
export const EXPORT_ONLY: ReadonlySet<Format> = new Set(['parquet', 'arrow']);

const BY_EXTENSION: Record<string, Format> = {
  '.txt': 'table',
  '.csv': 'csv',
  '.tsv': 'tsv',
  '.tab': 'tsv',
  '.ndjson': 'ndjson',
  '.jsonl': 'ndjson',
  '.json': 'json',
  '.parquet': 'parquet',
  '.arrow': 'arrow',
  '.feather': 'arrow',
  '.ipc': 'arrow',
};

export function parseFormat(value: string): Format {
  const format = value.toLowerCase();
  if (!(FORMATS as readonly string[]).includes(format)) {
    throw usageError(`unknown format "${value}": use one of ${FORMATS.join(', ')}`);
  }
  return format as Format;
}

/**
 * The output format: --format when given; else the extension of -o's file; else `table` (also when
 * stdout is not a terminal: give --format csv or ndjson to a program).
 */
export function chooseFormat(format: string | undefined, output: string | undefined): Format {
  if (format !== undefined) return parseFormat(format);
  if (output !== undefined && output !== '-') {
    const ext = path.extname(output).toLowerCase();
    const byExt = BY_EXTENSION[ext];
    if (!byExt) {
      throw usageError(
        `cannot tell the format from "${path.basename(output)}": give --format (${FORMATS.join(', ')})`,
      );
    }
    return byExt;
  }
  return 'table';
}

/** A streaming writer of rows in one of the text formats (all but table and the binary ones). */
export interface RowFormatter {
  start(): string;
  rows(rows: readonly Row[]): string;
  end(): string;
}

export interface DelimitedOptions {
  delimiter: string;
  header: boolean;
}

/**
 * CSV as RFC 4180, as the server's export writes it: a field is quoted when it holds the delimiter, a
 * quote, CR or LF; quotes doubled; lines end with CRLF. NULL is an empty field and an empty string is
 * `""`, so the two stay apart. TSV is the same with a tab.
 */
function delimited(columns: readonly Column[], options: DelimitedOptions): RowFormatter {
  const { delimiter } = options;
  const field = (text: string | null): string => {
    if (text === null) return '';
    if (text === '' || text.includes(delimiter) || /["\r\n]/.test(text)) {
      return `"${text.replace(/"/g, '""')}"`;
    }
    return text;
  };
  return {
    start: () => (options.header ? `${columns.map((c) => field(c.name)).join(delimiter)}\r\n` : ''),
    rows: (rows) =>
      rows.map((row) => `${columns.map((c) => field(valueText(row[c.name]))).join(delimiter)}\r\n`).join(''),
    end: () => '',
  };
}

/** One JSON object per line, values exactly as the API sent them. */
function ndjson(): RowFormatter {
  return { start: () => '', rows: (rows) => rows.map((r) => `${rowJson(r)}\n`).join(''), end: () => '' };
}

/** A JSON array of row objects, one row per line. */
function jsonArray(): RowFormatter {
  let first = true;
  return {
    start: () => '[',
    rows: (rows) =>
      rows
        .map((r) => {
          const sep = first ? '\n' : ',\n';
          first = false;
          return sep + rowJson(r);
        })
        .join(''),
    end: () => (first ? ']\n' : '\n]\n'),
  };
}

export function rowFormatter(
  format: 'csv' | 'tsv' | 'ndjson' | 'json',
  columns: readonly Column[],
  options: { header?: boolean; delimiter?: string } = {},
): RowFormatter {
  switch (format) {
    case 'csv':
      return delimited(columns, { delimiter: options.delimiter ?? ',', header: options.header ?? true });
    case 'tsv':
      return delimited(columns, { delimiter: options.delimiter ?? '\t', header: options.header ?? true });
    case 'ndjson':
      return ndjson();
    case 'json':
      return jsonArray();
  }
}
