import type { FieldPacket } from 'mysql2';
import { JsonText, type CellValue, type ColumnInfo } from '../connector.js';

/**
 * MySQL/MariaDB column definition → source type name and CellValue mapping.
 *
 * The driver runs with supportBigNumbers + bigNumberStrings (BIGINT as digits), dateStrings
 * (dates as the server's text), jsonStrings (JSON as text) and decimals as strings, so what reaches
 * this file is already exact; it picks the contract's form. This mapping serves the binary protocol
 * (prepared statements with parameters); the text protocol's rows are read from their bytes by
 * mysql-rows.ts, which shares the helpers below and gives the same values.
 *
 * JSON: MySQL sends its JSON type (245); MariaDB stores JSON as LONGTEXT and marks it only in the
 * extended column metadata (10.5+), which mysql2 negotiates, so both become JsonText. On a MariaDB
 * without that metadata a JSON column reads as a plain string.
 * BIT(n) becomes its unsigned integer value. Booleans are TINYINT(1) in MySQL, so numbers.
 * Geometry columns are MySQL's internal bytes (4-byte SRID + WKB).
 */

// Column types from the protocol (include/mysql_com.h, enum_field_types).
export const T = {
  DECIMAL: 0,
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  NULL: 6,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  NEWDATE: 14,
  VARCHAR: 15,
  BIT: 16,
  TIMESTAMP2: 17,
  DATETIME2: 18,
  TIME2: 19,
  VECTOR: 242,
  JSON: 245,
  NEWDECIMAL: 246,
  ENUM: 247,
  SET: 248,
  TINY_BLOB: 249,
  MEDIUM_BLOB: 250,
  LONG_BLOB: 251,
  BLOB: 252,
  VAR_STRING: 253,
  STRING: 254,
  GEOMETRY: 255,
} as const;

const FLAG_UNSIGNED = 32;
export const FLAG_ZEROFILL = 64;
const FLAG_ENUM = 256;
const FLAG_SET = 2048;
/** Character set 63 is `binary`: the column holds bytes, not text. */
export const BINARY_CHARSET = 63;

export type MysqlDecoder = (value: unknown) => CellValue;

export interface MysqlColumn {
  info: ColumnInfo;
  decode: MysqlDecoder;
}

/** How one result column is named and mapped. */
export function mysqlColumn(field: FieldPacket): MysqlColumn {
  return { info: { name: field.name, type: typeName(field) }, decode: decoderFor(field) };
}

export function flagsOf(field: FieldPacket): number {
  return typeof field.flags === 'number' ? field.flags : 0;
}

export function columnTypeOf(field: FieldPacket): number {
  return field.columnType ?? field.type ?? T.VAR_STRING;
}

function typeName(field: FieldPacket): string {
  // MariaDB's extended metadata names what the wire type hides (JSON is LONGTEXT, UUID is CHAR…).
  if (field.extendedFormat === 'json') return 'JSON';
  if (field.extendedTypeName) return field.extendedTypeName.toUpperCase();
  const type = columnTypeOf(field);
  const flags = flagsOf(field);
  const binary = field.characterSet === BINARY_CHARSET;
  const unsigned = flags & FLAG_UNSIGNED ? ' UNSIGNED' : '';
  switch (type) {
    case T.TINY:
      return `TINYINT${unsigned}`;
    case T.SHORT:
      return `SMALLINT${unsigned}`;
    case T.INT24:
      return `MEDIUMINT${unsigned}`;
    case T.LONG:
      return `INT${unsigned}`;
    case T.LONGLONG:
      return `BIGINT${unsigned}`;
    case T.DECIMAL:
    case T.NEWDECIMAL:
      return 'DECIMAL';
    case T.FLOAT:
      return 'FLOAT';
    case T.DOUBLE:
      return 'DOUBLE';
    case T.NULL:
      return 'NULL';
    case T.TIMESTAMP:
    case T.TIMESTAMP2:
      return 'TIMESTAMP';
    case T.DATE:
    case T.NEWDATE:
      return 'DATE';
    case T.TIME:
    case T.TIME2:
      return 'TIME';
    case T.DATETIME:
    case T.DATETIME2:
      return 'DATETIME';
    case T.YEAR:
      return 'YEAR';
    case T.BIT:
      return 'BIT';
    case T.JSON:
      return 'JSON';
    case T.VECTOR:
      return 'VECTOR';
    case T.GEOMETRY:
      return 'GEOMETRY';
    case T.ENUM:
      return 'ENUM';
    case T.SET:
      return 'SET';
    case T.TINY_BLOB:
    case T.MEDIUM_BLOB:
    case T.LONG_BLOB:
    case T.BLOB:
      // TEXT columns travel as BLOB with a text character set.
      return binary ? 'BLOB' : 'TEXT';
    case T.STRING:
      if (flags & FLAG_ENUM) return 'ENUM';
      if (flags & FLAG_SET) return 'SET';
      return binary ? 'BINARY' : 'CHAR';
    case T.VARCHAR:
    case T.VAR_STRING:
      return binary ? 'VARBINARY' : 'VARCHAR';
    default:
      return `TYPE ${type}`;
  }
}

function decoderFor(field: FieldPacket): MysqlDecoder {
  // MariaDB JSON (a LONGTEXT with a json_valid check) is recognised by its extended format.
  if (field.extendedFormat === 'json') return decodeJson;
  const decimals = field.decimals;
  switch (columnTypeOf(field)) {
    case T.TINY:
    case T.SHORT:
    case T.INT24:
    case T.LONG:
    case T.YEAR:
      // Up to 32 bits, signed or not: a double holds them exactly.
      return (v) => (typeof v === 'number' ? v : Number(v));
    case T.LONGLONG:
      // The server's own digits (bigNumberStrings), spliced as they are: exact, and no BigInt to
      // parse and print again for every value (7% of the connector's time).
      return (v) => (typeof v === 'string' ? new JsonText(v) : BigInt(v as number));
    case T.FLOAT:
      return (v) => shortestFloat32(Number(v));
    case T.DOUBLE:
      return (v) => Number(v);
    case T.DECIMAL:
    case T.NEWDECIMAL:
      return (v) => String(v);
    case T.DATE:
    case T.NEWDATE:
      return (v) => String(v);
    case T.DATETIME:
    case T.DATETIME2:
      return dateTimeDecoder(decimals, '');
    case T.TIMESTAMP:
    case T.TIMESTAMP2:
      // The session time zone is UTC, so a TIMESTAMP's text is UTC.
      return dateTimeDecoder(decimals, 'Z');
    case T.TIME:
    case T.TIME2:
      return (v) => padFraction(String(v), decimals);
    case T.JSON:
      return decodeJson;
    case T.BIT:
      return decodeBit;
    case T.NULL:
      return () => null;
    default:
      return decodeOther;
  }
}

function decodeJson(v: unknown): CellValue {
  return new JsonText(Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
}

/** BIT(n) as its unsigned integer value (a JSON number, exact even for BIT(64)). */
export function decodeBit(v: unknown): CellValue {
  if (!(v instanceof Uint8Array)) return Number(v);
  let n = 0n;
  for (const byte of v) n = (n << 8n) | BigInt(byte);
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

/** Strings stay strings; bytes (binary strings, BLOBs, geometry in MySQL's internal WKB) become Uint8Array. */
function decodeOther(v: unknown): CellValue {
  if (typeof v === 'string' || typeof v === 'number') return v;
  // A copy, so a cell never pins the driver's whole packet buffer in memory.
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'number' ? x : String(x)));
  return String(v);
}

/**
 * The text protocol sends `YYYY-MM-DD HH:MM:SS` plus the column's fraction digits: that common shape
 * is rewritten with two slices. Anything else (the binary protocol's trimmed fractions, zero dates,
 * years past 9999) takes the general path.
 */
function dateTimeDecoder(decimals: number, suffix: string): MysqlDecoder {
  const length = decimals >= 1 && decimals <= 6 ? 20 + decimals : 19;
  return (v) => {
    const text = String(v);
    if (text.length === length && text.charCodeAt(10) === 32 && !text.startsWith('0000-00-00')) {
      return text.slice(0, 10) + 'T' + text.slice(11) + suffix;
    }
    return dateTime(padFraction(text, decimals), suffix);
  };
}

const DATE_TIME = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)$/;

/** `YYYY-MM-DD HH:MM:SS[.f]` → `YYYY-MM-DDTHH:MM:SS[.f]` + suffix; zero dates keep the server's text. */
export function dateTime(text: string, suffix: string): string {
  const m = DATE_TIME.exec(text);
  if (!m || text.startsWith('0000-00-00')) return text;
  return `${m[1]}T${m[2]}${suffix}`;
}

/**
 * The text protocol pads fractions to the column's precision, the binary protocol drops zero
 * fractions: both are brought to the column's precision so a value reads the same either way.
 */
export function padFraction(text: string, decimals: number): string {
  if (!(decimals >= 1 && decimals <= 6)) return text;
  const dot = text.lastIndexOf('.');
  if (dot < 0) return /\d$/.test(text) ? `${text}.${'0'.repeat(decimals)}` : text;
  const digits = text.length - dot - 1;
  return digits < decimals ? text + '0'.repeat(decimals - digits) : text;
}

/**
 * The shortest decimal that reads back as the same single-precision value: FLOAT arrives widened to
 * a double by the binary protocol (1.1 → 1.100000023841858), and should read 1.1 as MySQL shows it.
 */
export function shortestFloat32(v: number): number {
  if (!Number.isFinite(v)) return v;
  const f = Math.fround(v);
  for (let p = 1; p <= 9; p++) {
    const candidate = Number(f.toPrecision(p));
    if (Math.fround(candidate) === f) return candidate;
  }
  return f;
}
