/**
 * DuckDB values → CellValues, per CONTRACT.md's value table. A converter is built once per column
 * from the column's type (recursively for LIST/ARRAY/STRUCT/MAP/UNION), so rows convert without
 * per-value type dispatch on the value's class.
 *
 * Decisions where the contract is silent:
 * - STRUCT and MAP become JSON objects (JsonText); MAP keys are written as their text.
 * - UNION yields the value of its active member; BIT, TIME WITH TIME ZONE and other exotic types
 *   yield DuckDB's own text.
 * - JSON nested inside LIST/STRUCT/MAP arrives as VARCHAR (DuckDB drops the alias there), so it is
 *   a string, not nested JSON; only a top-level JSON column becomes JsonText.
 * - FLOAT (32-bit) becomes the shortest double that reads back as the same float (0.1, not
 *   0.10000000149011612), as DuckDB itself prints it.
 * - DATE/TIMESTAMP infinities are `infinity` / `-infinity`; dates before year 1 keep DuckDB's
 *   `(BC)` text.
 */
import { DuckDBTimestampValue, DuckDBTypeId, type DuckDBType, type DuckDBValue } from '@duckdb/node-api';
import { JsonText, type CellValue } from '../connector.js';

export type CellConverter = (value: DuckDBValue) => CellValue;

/** The type's name as DuckDB spells it; an alias (JSON, a user-defined type) wins. */
export function duckdbTypeName(type: DuckDBType): string {
  return type.alias ?? type.toString();
}

/** DuckDB stores DATE infinities as ±(2^31 − 1) days. */
const DATE_INFINITY_DAYS = 2_147_483_647;

export function cellConverter(type: DuckDBType): CellConverter {
  const convert = valueConverter(type);
  return (value) => (value === null ? null : convert(value));
}

function valueConverter(type: DuckDBType): CellConverter {
  switch (type.typeId) {
    case DuckDBTypeId.BOOLEAN:
    case DuckDBTypeId.TINYINT:
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.UTINYINT:
    case DuckDBTypeId.USMALLINT:
    case DuckDBTypeId.UINTEGER:
    case DuckDBTypeId.DOUBLE:
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UHUGEINT:
    case DuckDBTypeId.BIGNUM:
      // The driver already hands these over exactly: boolean, number (≤ 32 bits, double), bigint.
      return (v) => v as boolean | number | bigint;
    case DuckDBTypeId.FLOAT:
      return (v) => shortestFloat32(v as number);
    case DuckDBTypeId.VARCHAR:
      return type.alias === 'JSON' ? (v) => new JsonText(v as string) : (v) => v as string;
    case DuckDBTypeId.DATE:
      return (v) => dateText(v);
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_S:
    case DuckDBTypeId.TIMESTAMP_MS:
    case DuckDBTypeId.TIMESTAMP_NS:
      return (v) => isoTimestamp(String(v));
    case DuckDBTypeId.TIMESTAMP_TZ:
      return (v) => utcTimestamp(v);
    case DuckDBTypeId.BLOB:
      return (v) => {
        const bytes = (v as { bytes: Uint8Array }).bytes;
        return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      };
    case DuckDBTypeId.LIST:
    case DuckDBTypeId.ARRAY: {
      const item = cellConverter(type.valueType);
      return (v) => (v as { items: readonly DuckDBValue[] }).items.map(item);
    }
    case DuckDBTypeId.STRUCT: {
      const entries = type.entryNames.map((name, i) => {
        const entryType = type.entryTypes[i];
        return { name, convert: entryType ? cellConverter(entryType) : String };
      });
      return (v) => {
        const values = (v as { entries: Readonly<Record<string, DuckDBValue>> }).entries;
        const members = entries.map(
          (e) => `${JSON.stringify(e.name)}:${cellJson(e.convert(values[e.name] ?? null))}`,
        );
        return new JsonText(`{${members.join(',')}}`);
      };
    }
    case DuckDBTypeId.MAP: {
      const key = cellConverter(type.keyType);
      const value = cellConverter(type.valueType);
      return (v) => {
        const pairs = (v as { entries: readonly { key: DuckDBValue; value: DuckDBValue }[] }).entries;
        const members = pairs.map(
          (p) => `${JSON.stringify(keyText(key(p.key)))}:${cellJson(value(p.value))}`,
        );
        return new JsonText(`{${members.join(',')}}`);
      };
    }
    case DuckDBTypeId.UNION: {
      const members = new Map(type.memberTags.map((tag, i) => [tag, type.memberTypes[i]] as const));
      return (v) => {
        const union = v as { tag: string; value: DuckDBValue };
        const memberType = members.get(union.tag);
        return memberType ? cellConverter(memberType)(union.value) : String(union.value);
      };
    }
    case DuckDBTypeId.SQLNULL:
      return () => null;
    default:
      // DECIMAL (exact digits at the column's scale), UUID, ENUM, TIME, TIME_NS, TIME WITH TIME ZONE,
      // INTERVAL, BIT, GEOMETRY…: DuckDB's canonical text is the contract's string form.
      return (v) => String(v);
  }
}

/** The shortest decimal that reads back as the same 32-bit float. */
function shortestFloat32(value: number): number {
  if (!Number.isFinite(value)) return value;
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(value.toPrecision(digits));
    if (Math.fround(candidate) === value) return candidate;
  }
  return value;
}

function dateText(value: DuckDBValue): string {
  const days = (value as { days: number }).days;
  if (days === DATE_INFINITY_DAYS) return 'infinity';
  if (days === -DATE_INFINITY_DAYS) return '-infinity';
  return String(value);
}

/** `YYYY-MM-DD HH:MM:SS[.f]` → `YYYY-MM-DDTHH:MM:SS[.f]`; infinities and BC dates keep DuckDB's text. */
function isoTimestamp(text: string): string {
  return /^\d{4}-\d\d-\d\d \d/.test(text) ? text.replace(' ', 'T') : text;
}

/**
 * TIMESTAMPTZ in UTC with `Z`. The value's own toString() renders in the server process's local
 * zone, so format its instant as a plain timestamp instead.
 */
function utcTimestamp(value: DuckDBValue): string {
  const text = new DuckDBTimestampValue((value as { micros: bigint }).micros).toString();
  const iso = isoTimestamp(text);
  return iso === text ? text : `${iso}Z`;
}

function keyText(key: CellValue): string {
  return typeof key === 'string' ? key : cellJson(key);
}

/** A CellValue as JSON text, with the same rules as the result encoder (used inside STRUCT/MAP). */
export function cellJson(value: CellValue): string {
  if (value === null) return 'null';
  if (value instanceof JsonText) return value.text;
  if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString('base64'));
  if (Array.isArray(value)) return `[${value.map(cellJson).join(',')}]`;
  switch (typeof value) {
    case 'bigint':
      return value.toString();
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : JSON.stringify(String(value));
    default:
      return JSON.stringify(value);
  }
}
