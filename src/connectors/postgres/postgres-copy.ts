import type { FieldDef } from 'pg';
import type pg from 'pg';
import pgCopy from 'pg-copy-streams';
import type { RawBatch } from '../support.js';

/**
 * The COPY path: a query that returns rows runs as `COPY (<query>) TO STDOUT`, and its rows are read
 * from COPY's text format instead of as DataRow messages. PostgreSQL writes each value with the same
 * output function either way (so the same text, under the same session settings); COPY only escapes
 * backslash, tab, newline and carriage return and writes NULL as `\N`. Reading it skips pg's
 * per-message parsing and the cursor's round trip per batch: this is how `psql \copy` moves rows.
 *
 * postgres-stream.ts decides per statement which path runs; this module has the pieces.
 */

export type RawRow = (string | null)[];

/** What goes before the statement; an error's position is shifted back by its length. */
export const COPY_PREFIX = 'COPY (';
/** After it: a newline first, so a `--` comment at the statement's end cannot swallow the parenthesis. */
const COPY_SUFFIX = '\n) TO STDOUT';

/** First words of statements COPY takes as its query (DML with RETURNING also works, but stays on the cursor). */
const COPYABLE_KEYWORDS = new Set(['select', 'with', 'values', 'table']);

/**
 * The COPY statement for `sql`, or undefined when it must not be wrapped: it does not start with one of
 * COPYABLE_KEYWORDS (after comments and parentheses), or the text could not be read to its end (an
 * unterminated quote or comment: the server's own error then comes from the cursor path).
 * A final `;` (and comments after it) is dropped, since it is not allowed inside the parentheses; every other
 * comment stays, so the statement shows on the server (pg_stat_activity, logs) as the user wrote it.
 */
export function copyStatement(sql: string): string | undefined {
  const scan = scanSql(sql);
  if (!scan || !COPYABLE_KEYWORDS.has(scan.keyword)) return undefined;
  return COPY_PREFIX + sql.slice(0, scan.end) + COPY_SUFFIX;
}

interface SqlScan {
  /** The first keyword, lower case. */
  keyword: string;
  /** Where the statement's text ends: at a final `;` (dropping it and the comments and space after it), else at the end. */
  end: number;
}

const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f';
const isIdentStart = (c: string) => /[A-Za-z_\u0080-\uffff]/.test(c);
const isIdentChar = (c: string) => /[A-Za-z0-9_$\u0080-\uffff]/.test(c);

/**
 * Reads SQL the way PostgreSQL's lexer splits it (quotes, `E''` escapes, quoted identifiers, dollar
 * quotes, nested block comments, line comments) far enough to find the first keyword and a final `;`.
 * Undefined when a quote or comment is never closed.
 */
export function scanSql(sql: string): SqlScan | undefined {
  let keyword = '';
  /** The end of the last thing that is neither space, comment nor `;`. */
  let end = 0;
  /** The first `;` after that (-1: none): the statement ends there, and what follows it is dropped. */
  let semicolon = -1;
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (isSpace(c)) {
      i++;
    } else if (c === '-' && next === '-') {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? n : nl + 1;
    } else if (c === '/' && next === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth--;
          i += 2;
        } else i++;
      }
      if (depth > 0) return undefined;
    } else if (c === ';') {
      if (semicolon < end) semicolon = i;
      i++;
    } else {
      let stop: number | undefined;
      if (c === "'" || c === '"') {
        const escapes = c === "'" && i > 0 && /[eE]/.test(sql[i - 1]!) && !isIdentChar(sql[i - 2] ?? ' ');
        stop = closeQuote(sql, i, c, escapes);
      } else if (c === '$' && (next === '$' || (next !== undefined && isIdentStart(next)))) {
        const tag = /^\$[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*\$|^\$\$/.exec(sql.slice(i, i + 64));
        if (tag) {
          const close = sql.indexOf(tag[0], i + tag[0].length);
          if (close < 0) return undefined;
          stop = close + tag[0].length;
        }
      } else if (isIdentStart(c)) {
        let j = i + 1;
        while (j < n && isIdentChar(sql[j]!)) j++;
        if (keyword === '') keyword = sql.slice(i, j).toLowerCase();
        stop = j;
      }
      if (stop === undefined) {
        // Any other character: an operator, a digit, a parenthesis (before the keyword too: `(SELECT …)`).
        stop = i + 1;
        if (keyword === '' && c !== '(') keyword = c;
      }
      if (stop < 0) return undefined;
      i = stop;
      end = i;
    }
  }
  // Comments before a final `;` stay (sqlcommenter tags, markers people look for in pg_stat_activity).
  return { keyword, end: semicolon >= end ? semicolon : n };
}

/** The index after the quote that closes the one at `open`; -1 when there is none. */
function closeQuote(sql: string, open: number, quote: string, backslashEscapes: boolean): number {
  let i = open + 1;
  while (i < sql.length) {
    const c = sql[i];
    if (backslashEscapes && c === '\\') i += 2;
    else if (c === quote) {
      if (sql[i + 1] === quote) i += 2;
      else return i + 1;
    } else i++;
  }
  return -1;
}

/**
 * The columns a statement would return, from PostgreSQL's own Parse and Describe of it (nothing is
 * executed): null when it returns no rows (DDL, DML without RETURNING, SET…). Rejects with the server's
 * error when the statement does not parse (or is more than one statement).
 */
export function describeStatement(client: pg.Client, sql: string): Promise<FieldDef[] | null> {
  return new Promise((resolve, reject) => {
    let fields: FieldDef[] | null = null;
    // A pg "submittable": the client hands it the connection when it is its turn, then the replies.
    const describe = {
      submit(connection: DescribeConnection) {
        connection.parse({ text: sql, name: '', types: [] });
        connection.describe({ type: 'S', name: '' });
        connection.sync();
      },
      handleRowDescription(message: { fields: FieldDef[] }) {
        fields = message.fields;
      },
      // pg forgets the active query on an error (its ReadyForQuery then reaches no one): settle here.
      handleError(err: unknown) {
        reject(err instanceof Error ? err : new Error(String(err)));
      },
      handleReadyForQuery() {
        resolve(fields);
      },
      // Not sent for a Describe; present because pg calls them for any reply it gets.
      handleDataRow() {},
      handleCommandComplete() {},
      handleEmptyQuery() {},
      handlePortalSuspended() {},
      handleCopyInResponse() {},
      handleCopyData() {},
    };
    client.query(describe as unknown as pg.Submittable);
  });
}

/** The parts of pg's Connection a Describe needs (absent from its type declarations). */
interface DescribeConnection {
  parse(query: { text: string; name: string; types: number[] }): void;
  describe(message: { type: 'S' | 'P'; name: string }): void;
  sync(): void;
}

/** A running `COPY … TO STDOUT` on `client`, read as rows of `width` raw values. */
export function startCopy(client: pg.Client, statement: string, width: number): CopyRowReader {
  const stream = client.query(pgCopy.to(statement));
  return new CopyRowReader(stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>, width);
}

/**
 * COPY's text format → rows of raw values (the text each value's output function wrote, or null), a
 * batch at a time, pulling chunks from the copy stream only as batches are asked for (back-pressure
 * reaches the socket). Each chunk's whole rows are decoded to one string at once and split with string
 * searches: about six times faster than a string per field from the bytes. A newline byte never occurs
 * inside a multi-byte UTF-8 character, so cutting after the last one never splits a character.
 */
export class CopyRowReader {
  /** Bytes received so far, to tell an error before any row from one in the middle. */
  received = 0;
  /** Whole rows decoded and not handed out yet, from `position`. */
  private text = '';
  private position = 0;
  /** The chunks of a row that has not arrived whole yet. */
  private rest: Buffer[] = [];
  private ended = false;

  constructor(
    private readonly chunks: AsyncIterator<Buffer>,
    private readonly width: number,
  ) {}

  async read(count: number): Promise<RawBatch<RawRow>> {
    const rows: RawRow[] = [];
    for (;;) {
      if (this.position < this.text.length) {
        this.position = parseCopyText(this.text, this.position, this.width, rows, count);
      }
      if (rows.length >= count || this.ended) break;
      const next = await this.chunks.next();
      if (next.done) {
        this.ended = true;
        if (this.rest.length > 0) throw new Error('The COPY data ended in the middle of a row.');
        break;
      }
      const chunk = next.value;
      this.received += chunk.length;
      const newline = chunk.lastIndexOf(NEWLINE);
      if (newline < 0) {
        // Still inside one (long) row: keep the chunk and join them once, when the row's end arrives.
        if (chunk.length > 0) this.rest.push(chunk);
        continue;
      }
      const end = newline + 1;
      // Whole rows only: the rest of this chunk waits for the next one.
      const whole = this.rest.length > 0 ? Buffer.concat([...this.rest, chunk.subarray(0, end)]) : chunk;
      this.text = (whole as unknown as Slicing).utf8Slice(0, whole === chunk ? end : whole.length);
      this.position = 0;
      this.rest = end === chunk.length ? [] : [chunk.subarray(end)];
    }
    return { rows, done: this.ended && this.position >= this.text.length };
  }
}

/** Node's own Buffer decoder, without toString's argument handling (not in the type declarations). */
interface Slicing {
  utf8Slice(start: number, end: number): string;
}

const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;

/**
 * Parses whole rows of COPY text (each ending with a newline) from `text` at `start` into `rows`,
 * until `limit` rows are there or the text is used up; returns where the next row begins.
 */
export function parseCopyText(
  text: string,
  start: number,
  width: number,
  rows: RawRow[],
  limit: number,
): number {
  const length = text.length;
  let pos = start;
  // Where the next backslash is: most results have none, and their fields are plain slices.
  let backslash = nextBackslash(text, pos);
  while (rows.length < limit && pos < length) {
    const end = text.indexOf('\n', pos);
    if (end < 0) throw new Error('A COPY row does not end with a newline.');
    const row: RawRow = new Array<string | null>(width);
    if (width > 0) {
      let from = pos;
      for (let column = 0; column < width - 1; column++) {
        const tab = text.indexOf('\t', from);
        if (tab < 0 || tab > end) {
          throw new Error(`A COPY row has ${column + 1} of the ${width} columns described.`);
        }
        row[column] = backslash < tab ? field(text, from, tab) : text.slice(from, tab);
        from = tab + 1;
        if (backslash < from) backslash = nextBackslash(text, from);
      }
      const tab = text.indexOf('\t', from);
      if (tab >= 0 && tab < end) throw new Error(`A COPY row has more than the ${width} columns described.`);
      row[width - 1] = backslash < end ? field(text, from, end) : text.slice(from, end);
    } else if (end !== pos) {
      throw new Error('A COPY row has more than the 0 columns described.');
    }
    pos = end + 1;
    if (backslash < pos) backslash = nextBackslash(text, pos);
    rows.push(row);
  }
  return pos;
}

function nextBackslash(text: string, from: number): number {
  const at = text.indexOf('\\', from);
  return at < 0 ? text.length : at;
}

/** A field that has a backslash in it: `\N` alone is NULL, anything else has escapes to undo. */
function field(text: string, start: number, end: number): string | null {
  if (end - start === 2 && text.charCodeAt(start + 1) === 0x4e /* N */) return null;
  // Rare (PostgreSQL escapes only backslash, tab, newline and carriage return): undone on the bytes,
  // where octal and hex escapes also stand for bytes.
  return unescapeField(Buffer.from(text.slice(start, end), 'utf8'));
}

/** The byte each one-letter escape stands for (`\b`, `\f`, `\n`, `\r`, `\t`, `\v`). */
const LETTER_ESCAPES: Readonly<Record<number, number>> = {
  0x62: 0x08,
  0x66: 0x0c,
  0x6e: 0x0a,
  0x72: 0x0d,
  0x74: 0x09,
  0x76: 0x0b,
};

/** Undoes `\\`, `\t`, `\n`, `\r`, `\b`, `\f`, `\v`, octal and `\x` escapes in `buf`. */
function unescapeField(buf: Buffer): string {
  const end = buf.length;
  const out = Buffer.allocUnsafe(end);
  let n = 0;
  for (let i = 0; i < end; i++) {
    const b = buf[i]!;
    if (b !== BACKSLASH || i + 1 >= end) {
      out[n++] = b;
      continue;
    }
    const e = buf[++i]!;
    const letter = LETTER_ESCAPES[e];
    if (letter !== undefined) {
      out[n++] = letter;
      continue;
    }
    if (e === 0x78 /* x */) {
      // One or two hex digits (PostgreSQL reads these on input; its output never writes them).
      let value = 0;
      let digits = 0;
      while (digits < 2 && i + 1 < end && isHex(buf[i + 1]!)) {
        value = value * 16 + hexValue(buf[++i]!);
        digits++;
      }
      out[n++] = digits > 0 ? value : e;
    } else if (isOctal(e)) {
      // One to three octal digits.
      let value = e - 0x30;
      for (let d = 1; d < 3 && i + 1 < end && isOctal(buf[i + 1]!); d++)
        value = value * 8 + (buf[++i]! - 0x30);
      out[n++] = value & 0xff;
    } else {
      out[n++] = e; // `\\` and any other escaped character stand for themselves
    }
  }
  return out.toString('utf8', 0, n);
}

const isOctal = (b: number) => b >= 0x30 && b <= 0x37;
const isHex = (b: number) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
const hexValue = (b: number) => (b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x61 + 10);
