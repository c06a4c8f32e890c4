import type { FieldPacket } from 'mysql2';
import { JsonText, type CellValue } from '../connector.js';
import {
  BINARY_CHARSET,
  FLAG_ZEROFILL,
  T,
  columnTypeOf,
  dateTime,
  decodeBit,
  flagsOf,
  padFraction,
  shortestFloat32,
} from './mysql-values.js';

/**
 * The text protocol's row packets decoded straight into CellValues, without mysql2's row parser: no
 * driver value per field, no typeCast wrapper, no second mapping pass. Every value is read from the
 * packet's bytes in the form the value table (CONTRACT.md) wants, and where that form is JSON text
 * that needs no escaping (DECIMAL, dates, BIGINT digits, plain ASCII text) it is handed over as
 * `JsonText`, so the encoder splices it without scanning it again.
 *
 * It gives the values mysql-values.ts gives for mysql2's, with two corrections: FLOAT and DOUBLE are
 * parsed exactly (mysql2's own text parsing is one ulp off for some 16-digit values: 632/7e0 read as
 * 90.28571428571428, where the server sent 90.28571428571429), and BIGINT ZEROFILL digits lose their
 * leading zeros (as JSON numbers must).
 *
 * A row packet (https://mariadb.com/kb/en/resultset-row/) is one length-encoded string per column:
 * 0xfb is NULL, a first byte below 0xfb is the length, 0xfc/0xfd/0xfe are followed by a 2/3/8-byte
 * length. mysql2 joins packets of 16 MB and more into one before they reach the decoder.
 */

/** The part of mysql2's Packet the decoder reads (not in mysql2's type declarations). */
export interface RowPacket {
  buffer: Buffer;
  /** Where the payload (after the 4-byte header) starts; the decoder moves it only for mysql2's own decoding. */
  offset: number;
  end: number;
  isEOF(): boolean;
  readLengthCodedString(encoding: string): string | null;
}

/** How one column's text is turned into its CellValue. */
const Kind = {
  /** Up to 32 bits and YEAR: a number, from the digits. */
  Int: 0,
  /** BIGINT: its digits as JsonText (exact, no BigInt round trip). */
  BigInt: 1,
  Float: 2,
  Double: 3,
  /** DECIMAL: the exact text, as a pre-quoted JsonText string. */
  Decimal: 4,
  /** DATE: as a pre-quoted JsonText string. */
  Date: 5,
  DateTime: 6,
  Time: 7,
  Json: 8,
  Bit: 9,
  Bytes: 10,
  Vector: 11,
  Null: 12,
  /** Text the connection's utf8mb4 sends. */
  Utf8: 13,
  /** Text in another encoding (a session that changed character_set_results): mysql2's own decoder. */
  OtherText: 14,
} as const;

type Kind = (typeof Kind)[keyof typeof Kind];

interface ColumnReader {
  kind: Kind;
  /** DATETIME/TIMESTAMP/TIME fraction digits (0 when none or unknown). */
  decimals: number;
  /** DATETIME: '"', TIMESTAMP (UTC in this session): 'Z"'. */
  close: string;
  /** DATETIME/TIMESTAMP: the text's length in its common shape `YYYY-MM-DD HH:MM:SS[.f]`. */
  length: number;
  encoding: string;
}

/**
 * The chunks mysql2 cuts packets from (socket reads, 64 KB at most) are read as one latin1 string
 * each, up to this size, and cut per cell without a native call each (about 50 ns a call). Its cells'
 * substrings may keep a chunk's string alive until their page is written: a few chunks per page.
 */
const CHUNK_TEXT_MAX = 128 * 1024;
/** Rows in a larger buffer (one joined from 16 MB packets) up to this size get one string per row. */
const ROW_TEXT_MAX = 4096;

// Anything outside printable ASCII, and the quote and backslash: such text is not spliced as it is.
const NOT_PLAIN = /[^\x20\x21\x23-\x5b\x5d-\x7f]/;

const MINUS = 0x2d;
const ZERO = 0x30;

/** Node's own Buffer decoders, without toString's argument handling (not in the type declarations). */
interface Slicing {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}

function latin1(buffer: Buffer, start: number, end: number): string {
  return (buffer as unknown as Slicing).latin1Slice(start, end);
}

function utf8(buffer: Buffer, start: number, end: number): string {
  return (buffer as unknown as Slicing).utf8Slice(start, end);
}

function readerFor(field: FieldPacket): ColumnReader {
  const decimals = field.decimals >= 1 && field.decimals <= 6 ? field.decimals : 0;
  const encoding = field.encoding ?? 'utf8';
  const reader = (kind: Kind, close = '"', length = 0): ColumnReader => ({
    kind,
    decimals,
    close,
    length,
    encoding,
  });
  // MariaDB JSON (a LONGTEXT with a json_valid check) is recognised by its extended format.
  if (field.extendedFormat === 'json') return reader(Kind.Json);
  switch (columnTypeOf(field)) {
    case T.TINY:
    case T.SHORT:
    case T.INT24:
    case T.LONG:
    case T.YEAR:
      return reader(Kind.Int);
    case T.LONGLONG:
      return reader(Kind.BigInt);
    case T.FLOAT:
      return reader(Kind.Float);
    case T.DOUBLE:
      return reader(Kind.Double);
    case T.DECIMAL:
    case T.NEWDECIMAL:
      return reader(Kind.Decimal);
    case T.DATE:
    case T.NEWDATE:
      return reader(Kind.Date);
    case T.DATETIME:
    case T.DATETIME2:
      return reader(Kind.DateTime, '"', decimals > 0 ? 20 + decimals : 19);
    case T.TIMESTAMP:
    case T.TIMESTAMP2:
      // The session time zone is UTC, so a TIMESTAMP's text is UTC.
      return reader(Kind.DateTime, 'Z"', decimals > 0 ? 20 + decimals : 19);
    case T.TIME:
    case T.TIME2:
      return reader(Kind.Time);
    case T.JSON:
      return reader(Kind.Json);
    case T.BIT:
      return reader(Kind.Bit);
    case T.NULL:
      return reader(Kind.Null);
    case T.GEOMETRY:
      // MySQL's internal bytes (SRID + WKB), as the binary protocol's path gives them.
      return reader(Kind.Bytes);
    case T.VECTOR:
      return reader(Kind.Vector);
    default:
      if (field.characterSet === BINARY_CHARSET) return reader(Kind.Bytes);
      return reader(encoding === 'utf8' ? Kind.Utf8 : Kind.OtherText);
  }
}

/** Decodes the row packets of one result set, whose column definitions are `fields`. */
export class TextRowDecoder {
  private readonly readers: ColumnReader[];
  private readonly zerofill: boolean[];
  /** The last chunk read as a whole, and its latin1 text. */
  private chunk: Buffer | undefined;
  private chunkText = '';

  constructor(fields: readonly FieldPacket[]) {
    this.readers = fields.map(readerFor);
    this.zerofill = fields.map((f) => (flagsOf(f) & FLAG_ZEROFILL) !== 0);
  }

  /** One row; throws on a packet that does not hold one value per column. */
  decode(packet: RowPacket): CellValue[] {
    const buffer = packet.buffer;
    const end = packet.end;
    const base = packet.offset;
    const readers = this.readers;
    const count = readers.length;
    // The chunk's (or a short row's) text once, then a substring per cell: see CHUNK_TEXT_MAX.
    let text = '';
    let origin = 0;
    let whole = true;
    if (buffer === this.chunk) text = this.chunkText;
    else if (buffer.length <= CHUNK_TEXT_MAX) {
      this.chunk = buffer;
      this.chunkText = text = latin1(buffer, 0, buffer.length);
    } else if (end - base <= ROW_TEXT_MAX) {
      text = latin1(buffer, base, end);
      origin = base;
    } else whole = false;
    const row = new Array<CellValue>(count);
    let at = base;
    for (let c = 0; c < count; c++) {
      if (at >= end) throw new Error(`A row packet ended before column ${c + 1} of ${count}.`);
      const head = at;
      let length = buffer[at++]!;
      if (length >= 0xfb) {
        if (length === 0xfb) {
          row[c] = null;
          continue;
        }
        if (length === 0xfc) {
          length = buffer[at]! | (buffer[at + 1]! << 8);
          at += 2;
        } else if (length === 0xfd) {
          length = buffer[at]! | (buffer[at + 1]! << 8) | (buffer[at + 2]! << 16);
          at += 3;
        } else if (length === 0xfe) {
          length = buffer.readUInt32LE(at) + buffer.readUInt32LE(at + 4) * 0x1_0000_0000;
          at += 8;
        } else {
          throw new Error(`A row packet has the length byte 0x${length.toString(16)} in column ${c + 1}.`);
        }
      }
      const stop = at + length;
      if (stop > end) throw new Error(`A value in column ${c + 1} runs past the end of its row packet.`);
      const reader = readers[c]!;
      const ascii = whole ? text.substring(at - origin, stop - origin) : undefined;
      switch (reader.kind) {
        case Kind.Int:
          row[c] = integer(buffer, at, stop);
          break;
        case Kind.BigInt: {
          let from = at;
          // ZEROFILL pads with zeros, which a JSON number may not start with.
          if (this.zerofill[c]) while (from < stop - 1 && buffer[from] === ZERO) from++;
          row[c] = new JsonText(from === at && ascii !== undefined ? ascii : latin1(buffer, from, stop));
          break;
        }
        case Kind.Float:
          row[c] = shortestFloat32(Number.parseFloat(ascii ?? latin1(buffer, at, stop)));
          break;
        case Kind.Double:
          row[c] = Number.parseFloat(ascii ?? latin1(buffer, at, stop));
          break;
        case Kind.Decimal:
        case Kind.Date:
          // Digits, '-' and '.': nothing to escape.
          row[c] = new JsonText('"' + (ascii ?? latin1(buffer, at, stop)) + '"');
          break;
        case Kind.DateTime:
          row[c] = dateTimeValue(buffer, at, stop, ascii, reader);
          break;
        case Kind.Time:
          // The server's text (`-838:59:59`, fraction padded to the column's digits): nothing to escape.
          row[c] = new JsonText('"' + padFraction(ascii ?? latin1(buffer, at, stop), reader.decimals) + '"');
          break;
        case Kind.Json:
          row[c] = new JsonText(
            reader.encoding === 'utf8' || reader.encoding === 'binary'
              ? utf8(buffer, at, stop)
              : otherText(packet, head, reader.encoding),
          );
          break;
        case Kind.Bit:
          row[c] = decodeBit(buffer.subarray(at, stop));
          break;
        case Kind.Bytes:
          // A copy, so a cell never pins the driver's whole chunk in memory.
          row[c] = new Uint8Array(buffer.subarray(at, stop));
          break;
        case Kind.Vector:
          row[c] = vector(buffer, at, stop);
          break;
        case Kind.Null:
          row[c] = null;
          break;
        case Kind.Utf8: {
          const plain = ascii ?? latin1(buffer, at, stop);
          // Printable ASCII without quote or backslash is its own JSON string body; the rest is decoded
          // as UTF-8 and left to the encoder's escaping.
          row[c] = NOT_PLAIN.test(plain) ? utf8(buffer, at, stop) : new JsonText('"' + plain + '"');
          break;
        }
        case Kind.OtherText:
          row[c] = otherText(packet, head, reader.encoding);
          break;
      }
      at = stop;
    }
    if (at !== end) throw new Error(`A row packet holds more than its ${count} columns.`);
    return row;
  }
}

/** An integer of up to 32 bits (or YEAR) from its ASCII digits. */
function integer(buffer: Buffer, start: number, end: number): number {
  let at = start;
  const negative = buffer[at] === MINUS;
  if (negative) at++;
  let n = 0;
  for (; at < end; at++) {
    const digit = buffer[at]! - ZERO;
    // Not a plain integer (cannot happen for these types): let Number judge it.
    if (digit < 0 || digit > 9) return Number(latin1(buffer, start, end));
    n = n * 10 + digit;
  }
  return negative ? -n : n;
}

/**
 * DATETIME/TIMESTAMP: the common shape `YYYY-MM-DD HH:MM:SS[.f]` (fraction at the column's precision,
 * as the text protocol pads it) becomes a pre-quoted `"YYYY-MM-DDTHH:MM:SS[.f][Z]"`; anything else
 * (zero dates, years past 9999) takes the general path, as mysql-values.ts does.
 */
function dateTimeValue(
  buffer: Buffer,
  start: number,
  end: number,
  ascii: string | undefined,
  reader: ColumnReader,
): CellValue {
  const text = ascii ?? latin1(buffer, start, end);
  if (end - start === reader.length && buffer[start + 10] === 0x20 && !isZeroDate(buffer, start)) {
    return new JsonText('"' + text.substring(0, 10) + 'T' + text.substring(11) + reader.close);
  }
  return dateTime(padFraction(text, reader.decimals), reader.close === '"' ? '' : 'Z');
}

/** The text starts with `0000-00-00`. */
function isZeroDate(buffer: Buffer, at: number): boolean {
  return (
    buffer[at] === ZERO &&
    buffer[at + 1] === ZERO &&
    buffer[at + 2] === ZERO &&
    buffer[at + 3] === ZERO &&
    buffer[at + 4] === MINUS &&
    buffer[at + 5] === ZERO &&
    buffer[at + 6] === ZERO &&
    buffer[at + 7] === MINUS &&
    buffer[at + 8] === ZERO &&
    buffer[at + 9] === ZERO
  );
}

/** VECTOR: little-endian float32s, as mysql2 reads them. */
function vector(buffer: Buffer, start: number, end: number): number[] {
  const values: number[] = [];
  for (let at = start; at + 4 <= end; at += 4) values.push(buffer.readFloatLE(at));
  return values;
}

/** Text in an encoding other than UTF-8: mysql2's decoder (iconv-lite) reads it from its length byte. */
function otherText(packet: RowPacket, head: number, encoding: string): string {
  const saved = packet.offset;
  packet.offset = head;
  try {
    return packet.readLengthCodedString(encoding) ?? '';
  } finally {
    packet.offset = saved;
  }
}

/**
 * Makes a text-protocol query command (mysql2's Query) hand its row packets to `onRow` instead of
 * building a row with its own parser and emitting `result` for it. mysql2's Query reads rows in its
 * `row` state, which `fieldsEOF` takes from the instance (`return this.row`): an own `row` replaces it
 * for every result set of the command. EOF packets (end of a result set, or more to come) go to
 * mysql2's own `row`, which ends the command or moves on to the next result set as before.
 */
export function readTextRows(command: object, onRow: (packet: RowPacket) => void): void {
  const original: unknown = Reflect.get(command, 'row');
  if (typeof original !== 'function') throw new Error('This mysql2 Query has no row state to replace.');
  const row = function (this: unknown, packet: RowPacket, connection: unknown): unknown {
    if (packet.isEOF()) return Reflect.apply(original, this, [packet, connection]) as unknown;
    onRow(packet);
    return row;
  };
  Reflect.set(command, 'row', row);
}
