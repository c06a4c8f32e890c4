/**
 * Reading stored result pages for exports. A page is the exact JSON text of its `results` array
 * (src/encoding/page-writer.ts): `[{"a":1,"b":"x"},…]`, keys in `fields` order. Exports never parse a page
 * into JS values: each value is cut out as its raw JSON text, so 64-bit integers and decimals keep every
 * digit, and each writer decides what the text becomes.
 */

/** A finished result to export: its shape, and its stored pages in order. */
export interface StoredResult {
  id: string;
  /** Column names as qrun returns them in `fields` (unique). */
  fields: string[];
  /** `{name, type}` per column: the source type names (CONTRACT.md `data.schema`). */
  schema: ColumnSchema[];
  /** Rows in the whole result. */
  count: number;
  /**
   * The stored pages in order, each the JSON array of one page's rows, read one at a time. Each call
   * starts a new pass from the first page (Arrow and Parquet read the result twice).
   */
  pages(): AsyncIterable<Buffer>;
}

export interface ColumnSchema {
  name: string;
  type: string;
}

/** A stored page that is not what the page writer writes: a bug or damaged storage, never user input. */
export class StoredPageError extends Error {
  constructor(message: string, at: number) {
    super(`A stored result page is not valid: ${message} at offset ${at}.`);
    this.name = 'StoredPageError';
  }
}

const QUOTE = 34; // "
const BACKSLASH = 92;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;
const COMMA = 44;
const COLON = 58;

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

/** The index just past the string that opens at `i` (a `"`). */
function stringEnd(text: string, i: number): number {
  let from = i + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    if (q < 0) throw new StoredPageError('unterminated string', i);
    let backslashes = 0;
    for (let b = q - 1; text.charCodeAt(b) === BACKSLASH; b--) backslashes++;
    if (backslashes % 2 === 0) return q + 1;
    from = q + 1;
  }
}

/** The index just past the JSON value that starts at `i` (no leading space). */
export function valueEnd(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === QUOTE) return stringEnd(text, i);
  if (c === OPEN_BRACE || c === OPEN_BRACKET) {
    let depth = 0;
    let j = i;
    while (j < text.length) {
      const d = text.charCodeAt(j);
      if (d === QUOTE) {
        j = stringEnd(text, j);
        continue;
      }
      if (d === OPEN_BRACE || d === OPEN_BRACKET) depth++;
      else if (d === CLOSE_BRACE || d === CLOSE_BRACKET) {
        depth--;
        if (depth === 0) return j + 1;
      }
      j++;
    }
    throw new StoredPageError('unterminated object or array', i);
  }
  // A number, true, false or null: up to the next delimiter.
  let j = i;
  while (j < text.length) {
    const d = text.charCodeAt(j);
    if (d === COMMA || d === CLOSE_BRACE || d === CLOSE_BRACKET || isSpace(d)) break;
    j++;
  }
  if (j === i) throw new StoredPageError('missing value', i);
  return j;
}

/**
 * The rows of one stored page, each as the raw JSON text of its values in column order. `columns` is
 * the result's column count; a row with another count is a damaged page.
 */
export function* pageRows(page: Buffer | string, columns: number): Generator<string[]> {
  const text = typeof page === 'string' ? page : page.toString('utf8');
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== OPEN_BRACKET) throw new StoredPageError('expected [', i);
  i = skipSpace(text, i + 1);
  if (text.charCodeAt(i) === CLOSE_BRACKET) return;
  for (;;) {
    if (text.charCodeAt(i) !== OPEN_BRACE) throw new StoredPageError('expected {', i);
    i = skipSpace(text, i + 1);
    const row: string[] = new Array<string>(columns);
    let n = 0;
    if (text.charCodeAt(i) !== CLOSE_BRACE) {
      for (;;) {
        if (text.charCodeAt(i) !== QUOTE) throw new StoredPageError('expected a key', i);
        i = skipSpace(text, stringEnd(text, i));
        if (text.charCodeAt(i) !== COLON) throw new StoredPageError('expected :', i);
        i = skipSpace(text, i + 1);
        const end = valueEnd(text, i);
        if (n >= columns) throw new StoredPageError(`a row with more than ${columns} values`, i);
        row[n++] = text.slice(i, end);
        i = skipSpace(text, end);
        const c = text.charCodeAt(i);
        i = skipSpace(text, i + 1);
        if (c === CLOSE_BRACE) break;
        if (c !== COMMA) throw new StoredPageError('expected , or }', i);
      }
    } else {
      i = skipSpace(text, i + 1);
    }
    if (n !== columns) throw new StoredPageError(`a row with ${n} values instead of ${columns}`, i);
    yield row;
    const c = text.charCodeAt(i);
    if (c === CLOSE_BRACKET) return;
    if (c !== COMMA) throw new StoredPageError('expected , or ]', i);
    i = skipSpace(text, i + 1);
  }
}

/** The raw JSON text of each element of a JSON array's raw text. */
export function arrayItems(raw: string): string[] {
  const items: string[] = [];
  let i = skipSpace(raw, 1);
  if (raw.charCodeAt(i) === CLOSE_BRACKET) return items;
  for (;;) {
    const end = valueEnd(raw, i);
    items.push(raw.slice(i, end));
    i = skipSpace(raw, end);
    const c = raw.charCodeAt(i);
    if (c === CLOSE_BRACKET) return items;
    if (c !== COMMA) throw new StoredPageError('expected , or ] in an array', i);
    i = skipSpace(raw, i + 1);
  }
}

/** Whether the raw value is a JSON string. */
export function isStringToken(raw: string): boolean {
  return raw.charCodeAt(0) === QUOTE;
}

/** The text of a raw JSON string token. */
export function decodeString(raw: string): string {
  return raw.indexOf('\\') < 0 ? raw.slice(1, -1) : (JSON.parse(raw) as string);
}

/**
 * A value as text, the way CSV and the typed formats' text columns show it: a string's own text, and any
 * other value's JSON text as stored (numbers digit for digit, JSON and arrays as JSON). Null is null.
 */
export function valueText(raw: string): string | null {
  if (raw === 'null') return null;
  return isStringToken(raw) ? decodeString(raw) : raw;
}

/** The raw JSON text of each row object of a stored page, as stored (for ndjson and json). */
export function pageRowTexts(page: Buffer | string): string[] {
  const text = typeof page === 'string' ? page : page.toString('utf8');
  const rows: string[] = [];
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== OPEN_BRACKET) throw new StoredPageError('expected [', i);
  i = skipSpace(text, i + 1);
  if (text.charCodeAt(i) === CLOSE_BRACKET) return rows;
  for (;;) {
    if (text.charCodeAt(i) !== OPEN_BRACE) throw new StoredPageError('expected {', i);
    const end = valueEnd(text, i);
    rows.push(text.slice(i, end));
    i = skipSpace(text, end);
    const c = text.charCodeAt(i);
    if (c === CLOSE_BRACKET) return rows;
    if (c !== COMMA) throw new StoredPageError('expected , or ]', i);
    i = skipSpace(text, i + 1);
  }
}
