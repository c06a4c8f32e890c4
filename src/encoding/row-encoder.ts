import { JsonText } from '../connectors/connector.js';
import type { CellValue } from '../connectors/connector.js';

/**
 * Turns one row of CellValues into the JSON text of one result object, following CONTRACT.md's value
 * table. This is the ingest hot path: it builds one string per row and allocates nothing else
 * that a value does not need (key prefixes are escaped once per result, not once per row).
 */
export type RowEncoder = (row: readonly CellValue[]) => string;

/**
 * `fieldNames` must already be unique (see uniqueFieldNames); keys are written in this order.
 * A row whose length differs from the column count is a connector bug and throws.
 */
export function createRowEncoder(fieldNames: readonly string[]): RowEncoder {
  const count = fieldNames.length;
  if (count === 0) {
    return (row) => {
      if (row.length !== 0) throw rowLengthError(0, row.length);
      return '{}';
    };
  }
  // `{"a":` for the first column, `,"b":` for the rest; JSON.stringify escapes quotes, backslashes,
  // control characters and lone surrogates in names.
  const prefixes = fieldNames.map((name, i) => (i === 0 ? '{' : ',') + JSON.stringify(name) + ':');

  return (row) => {
    if (row.length !== count) throw rowLengthError(count, row.length);
    let out = '';
    let i = 0;
    try {
      for (; i < count; i++) out += (prefixes[i] as string) + encode(row[i]);
    } catch (error) {
      throw error instanceof UnsupportedValueError ? error.inColumn(fieldNames[i] ?? '') : error;
    }
    return out + '}';
  };
}

/** Encodes a single value; also used where values are written outside row objects (exports). */
export function encodeValue(value: CellValue): string {
  return encode(value);
}

/** A value outside CellValue reached the encoder: a connector bug, reported with the JS type. */
export class UnsupportedValueError extends TypeError {
  constructor(
    readonly typeName: string,
    readonly column?: string,
  ) {
    super(
      `Cannot encode a value of JS type ${typeName}${column === undefined ? '' : ` in column ${JSON.stringify(column)}`} as JSON.`,
    );
    this.name = 'UnsupportedValueError';
  }

  inColumn(column: string): UnsupportedValueError {
    return new UnsupportedValueError(this.typeName, column);
  }
}

function encode(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return encodeString(value);
    case 'number':
      return encodeNumber(value);
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return 'null';
      // Most common first: int8/numeric/json columns arrive as JsonText.
      if (value instanceof JsonText) return encodeJsonText(value);
      if (Array.isArray(value)) return encodeArray(value);
      if (value instanceof Uint8Array) return encodeBinary(value);
      break;
  }
  throw new UnsupportedValueError(describeType(value));
}

// Anything JSON.stringify would escape: quote, backslash, C0 controls, and surrogates (paired ones are
// left as they are by JSON.stringify, lone ones escaped; either way it decides, not us).
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

function encodeString(value: string): string {
  // Most text needs no escaping, and a regex scan is about 3x faster than JSON.stringify on it.
  // Otherwise JSON.stringify (Node 20: well-formed, so lone surrogates become \udxxx and the page
  // stays valid UTF-8). Both paths give byte-identical output.
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : '"' + value + '"';
}

function encodeNumber(value: number): string {
  if (Number.isFinite(value)) {
    // String() never writes `-0` (it gives "0") and writes 1e21 as "1e+21": both valid JSON numbers.
    return String(value);
  }
  if (Number.isNaN(value)) return '"NaN"';
  return value > 0 ? '"Infinity"' : '"-Infinity"';
}

function encodeJsonText(value: JsonText): string {
  // Spliced unchecked (parsing it would cost the hot path), but empty text would break the whole page.
  if (value.text.length === 0) throw new Error('A JsonText value is empty; it must hold a JSON value.');
  return value.text;
}

function encodeBinary(value: Uint8Array): string {
  const buffer = Buffer.isBuffer(value)
    ? value
    : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  // Base64 never needs JSON escaping.
  return '"' + buffer.toString('base64') + '"';
}

function encodeArray(values: readonly unknown[]): string {
  const length = values.length;
  if (length === 0) return '[]';
  let out = '[' + encode(values[0]);
  for (let i = 1; i < length; i++) out += ',' + encode(values[i]);
  return out + ']';
}

function describeType(value: unknown): string {
  if (typeof value !== 'object' || value === null) return typeof value;
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' ? `object (${name})` : 'object';
}

function rowLengthError(expected: number, actual: number): Error {
  return new Error(`A result row has ${actual} values but the result has ${expected} columns.`);
}
