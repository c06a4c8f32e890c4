import { arrayItems, decodeString, isStringToken, pageRows, type StoredResult } from './stored-rows.js';

/**
 * The typed formats' column types (Arrow and Parquet), from the stored `schema`'s source type names.
 * A name says what a column should hold; the values say what it does (SQLite's declared types are hints,
 * a PostgreSQL `_int4` may be two-dimensional), so planColumns reads the result once and gives every
 * column the first kind, along its fallbacks, that holds each of its values exactly.
 */
export type ColumnKind =
  | { kind: 'int64' }
  | { kind: 'uint64' }
  | { kind: 'decimal'; precision: number; scale: number }
  | { kind: 'float64' }
  | { kind: 'bool' }
  | { kind: 'date' }
  | { kind: 'timestamp' }
  | { kind: 'timestamptz' }
  | { kind: 'binary' }
  /** The value's JSON text (JSON columns, structs, maps, arrays that are not lists of one kind). */
  | { kind: 'json' }
  /** A string's text; any other value's JSON text. */
  | { kind: 'string' }
  | { kind: 'list'; item: ColumnKind };

const INT64 = { kind: 'int64' } as const;
const UINT64 = { kind: 'uint64' } as const;
const FLOAT64 = { kind: 'float64' } as const;
const BOOL = { kind: 'bool' } as const;
const DATE = { kind: 'date' } as const;
const TIMESTAMP = { kind: 'timestamp' } as const;
const TIMESTAMPTZ = { kind: 'timestamptz' } as const;
const BINARY = { kind: 'binary' } as const;
const JSON_TEXT = { kind: 'json' } as const;
const STRING = { kind: 'string' } as const;

/** The largest DECIMAL precision Parquet (through DuckDB) and Arrow's Decimal128 hold. */
const MAX_DECIMAL_PRECISION = 38;

const SIGNED_INTS = new Set([
  // PostgreSQL
  'INT2',
  'INT4',
  'INT8',
  'OID',
  // MySQL, MariaDB, DuckDB, SQLite
  'TINYINT',
  'SMALLINT',
  'MEDIUMINT',
  'INT',
  'INTEGER',
  'BIGINT',
  'YEAR',
  'UTINYINT',
  'USMALLINT',
  'UINTEGER',
  'INT1',
  'INT16',
  'INT32',
  'INT64',
  'LONG',
]);
const FLOATS = new Set([
  'FLOAT4',
  'FLOAT8',
  'FLOAT',
  'DOUBLE',
  'REAL',
  'DOUBLE PRECISION',
  'FLOAT32',
  'FLOAT64',
]);
const BINARIES = new Set([
  'BYTEA',
  'BLOB',
  'TINYBLOB',
  'MEDIUMBLOB',
  'LONGBLOB',
  'BINARY',
  'VARBINARY',
  'BYTES',
]);

/** The kind a source type name asks for (before the values have their say). */
export function kindOfType(typeName: string): ColumnKind {
  const t = typeName.trim().toUpperCase();
  // Arrays: PostgreSQL's `_int4`, DuckDB's `INTEGER[]` / `INTEGER[3]`.
  if (t.startsWith('_')) return listOf(kindOfType(t.slice(1)));
  const list = /^(.*)\[\d*\]$/.exec(t);
  if (list) return listOf(kindOfType(list[1]!));
  if (t === 'BOOL' || t === 'BOOLEAN') return BOOL;
  if (SIGNED_INTS.has(t)) return INT64;
  if (/^(TINYINT|SMALLINT|MEDIUMINT|INT|INTEGER)( UNSIGNED)?$/.test(t)) return INT64;
  if (t === 'BIGINT UNSIGNED' || t === 'UBIGINT' || t === 'BIT') return UINT64;
  if (FLOATS.has(t) || /^(FLOAT|DOUBLE)( UNSIGNED)?$/.test(t)) return FLOAT64;
  const decimal = /^(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)$/.exec(t);
  if (decimal) {
    const precision = Number(decimal[1]);
    const scale = Number(decimal[2]);
    if (precision >= 1 && precision <= MAX_DECIMAL_PRECISION && scale <= precision) {
      return { kind: 'decimal', precision, scale };
    }
    return STRING;
  }
  if (t === 'DATE') return DATE;
  // DuckDB's TIMESTAMP_NS keeps microseconds only where its values have no more digits (else text).
  if (/^(TIMESTAMP(_S|_MS|_NS)?|DATETIME|TIMESTAMP WITHOUT TIME ZONE)$/.test(t)) return TIMESTAMP;
  if (t === 'TIMESTAMPTZ' || t === 'TIMESTAMP WITH TIME ZONE') return TIMESTAMPTZ;
  if (BINARIES.has(t)) return BINARY;
  if (t === 'JSON' || t === 'JSONB' || /^(STRUCT|MAP|UNION)\b/.test(t)) return JSON_TEXT;
  return STRING;
}

/** Lists of scalar kinds that both writers build natively; any other list is its JSON text. */
function listOf(item: ColumnKind): ColumnKind {
  switch (item.kind) {
    case 'int64':
    case 'float64':
    case 'decimal':
    case 'bool':
    case 'string':
    case 'list':
      return { kind: 'list', item };
    default:
      return JSON_TEXT;
  }
}

/** Where a kind goes when a value does not fit it; string and json hold anything. */
function fallback(kind: ColumnKind): ColumnKind {
  switch (kind.kind) {
    case 'bool':
      // SQLite's BOOLEAN holds 0 and 1.
      return INT64;
    case 'list':
      return JSON_TEXT;
    case 'timestamp':
      // MySQL's TIMESTAMP is a point in time, which the contract writes in UTC with `Z`.
      return TIMESTAMPTZ;
    default:
      return STRING;
  }
}

const INT_RE = /^-?\d+$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const DECIMAL_RE = /^-?(\d+)(?:\.(\d+))?$/;
const DATE_RE = /^"\d{4}-\d\d-\d\d"$/;
const TIMESTAMP_RE = /^"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?"$/;
const TIMESTAMPTZ_RE = /^"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z"$/;
const BASE64_RE = /^"[A-Za-z0-9+/]*={0,2}"$/;
const NUMBER_START = /^-?\d/;
const SPECIAL_FLOATS = new Set(['"NaN"', '"Infinity"', '"-Infinity"']);

/** Whether the raw JSON value goes into a column of this kind without losing anything. */
export function fits(kind: ColumnKind, raw: string): boolean {
  if (raw === 'null') return true;
  switch (kind.kind) {
    case 'string':
    case 'json':
      return true;
    case 'int64': {
      if (!INT_RE.test(raw)) return false;
      if (raw.length < 19) return true;
      const v = BigInt(raw);
      return v >= INT64_MIN && v <= INT64_MAX;
    }
    case 'uint64':
      return INT_RE.test(raw) && raw[0] !== '-' && (raw.length < 20 || BigInt(raw) <= UINT64_MAX);
    case 'decimal': {
      const text = isStringToken(raw) ? decodeString(raw) : raw;
      const m = DECIMAL_RE.exec(text);
      if (!m) return false;
      const whole = m[1]!.replace(/^0+/, '');
      const fraction = m[2] ?? '';
      return whole.length <= kind.precision - kind.scale && fraction.length <= kind.scale;
    }
    case 'float64':
      return isStringToken(raw) ? SPECIAL_FLOATS.has(raw) : NUMBER_START.test(raw);
    case 'bool':
      return raw === 'true' || raw === 'false';
    case 'date':
      return DATE_RE.test(raw) && validDate(raw);
    case 'timestamp':
      return TIMESTAMP_RE.test(raw) && validDate(raw);
    case 'timestamptz':
      return TIMESTAMPTZ_RE.test(raw) && validDate(raw);
    case 'binary':
      return BASE64_RE.test(raw);
    case 'list':
      return raw.charCodeAt(0) === 91 && arrayItems(raw).every((item) => fits(kind.item, item));
  }
}

/** Month 1–12, day within the month, year 0001 or later; times 00:00:00–23:59:59 (no leap seconds). */
function validDate(raw: string): boolean {
  const year = Number(raw.slice(1, 5));
  const month = Number(raw.slice(6, 8));
  const day = Number(raw.slice(9, 11));
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return false;
  if (raw.length <= 12) return true;
  const hour = Number(raw.slice(12, 14));
  const minute = Number(raw.slice(15, 17));
  const second = Number(raw.slice(18, 20));
  return hour < 24 && minute < 60 && second < 60;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** A column of a typed export: its name and the kind its values fit. */
export interface PlannedColumn {
  name: string;
  kind: ColumnKind;
}

/**
 * Reads the whole result once (page by page) and settles every column's kind: the schema's, or the first
 * fallback that holds all of its values exactly. Memory: one page at a time.
 */
export async function planColumns(result: StoredResult): Promise<PlannedColumn[]> {
  const columns = result.fields.map((name, i) => ({
    name,
    kind: kindOfType(result.schema[i]?.type ?? ''),
  }));
  const open = () => columns.some((c) => c.kind.kind !== 'string' && c.kind.kind !== 'json');
  if (!open()) return columns;
  for await (const page of result.pages()) {
    for (const row of pageRows(page, columns.length)) {
      for (let i = 0; i < columns.length; i++) {
        const column = columns[i]!;
        while (!fits(column.kind, row[i]!)) column.kind = fallback(column.kind);
      }
    }
    if (!open()) break;
  }
  return columns;
}
