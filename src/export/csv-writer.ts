import { pageRows, valueText, type StoredResult } from './stored-rows.js';

export interface CsvOptions {
  header: boolean;
  /** One character, never `"`, CR or LF (checked by parseExportOptions). */
  delimiter: string;
}

/**
 * CSV (and TSV: the same with a tab) per RFC 4180: CRLF line ends, a header row of the field names unless
 * asked not to, and a field quoted (quotes doubled) when it holds the delimiter, a quote, CR or LF. NULL is
 * an empty field; an empty string is `""`, so the two stay apart. Values are the contract's: numbers digit
 * for digit as stored, strings as their text, JSON and arrays as their JSON text. One chunk per stored page.
 */
export async function* csvChunks(result: StoredResult, options: CsvOptions): AsyncGenerator<Buffer> {
  const { delimiter } = options;
  const columns = result.fields.length;
  const field = csvField(delimiter);
  // A result without columns (a statement without a result set) is an empty file, header or not.
  if (options.header && columns > 0) {
    yield Buffer.from(result.fields.map(field).join(delimiter) + '\r\n', 'utf8');
  }
  for await (const page of result.pages()) {
    let out = '';
    for (const row of pageRows(page, columns)) {
      for (let i = 0; i < columns; i++) {
        if (i > 0) out += delimiter;
        const text = valueText(row[i]!);
        if (text !== null) out += field(text);
      }
      out += '\r\n';
    }
    if (out.length > 0) yield Buffer.from(out, 'utf8');
  }
}

/** A non-null field's text, quoted when RFC 4180 needs it (and when empty, to tell it from NULL). */
function csvField(delimiter: string): (text: string) => string {
  return (text) => {
    if (text === '') return '""';
    if (text.includes(delimiter) || /["\r\n]/.test(text)) return '"' + text.replaceAll('"', '""') + '"';
    return text;
  };
}
