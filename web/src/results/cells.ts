import { isLosslessNumber, stringifyExact } from '../api/exact-json';

/**
 * How values look in the grid. Values arrive as CONTRACT.md's value table says: numbers exactly as stored
 * (see exact-json.ts), decimals, dates and times as strings, json/jsonb as nested JSON, binary as base64.
 * NULL is drawn distinctly (styled, see `.cell-null`) from the string "NULL".
 */

/** One line of text for a cell (the grid cuts it to the column's width). */
export function cellText(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'string')
    return value.length > 500 ? `${oneLine(value.slice(0, 500))}…` : oneLine(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (isLosslessNumber(value)) return value.value;
  const text = stringifyExact(value);
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

/** The whole value: JSON values pretty-printed, everything else as its full text. */
export function cellDetail(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (isLosslessNumber(value)) return value.value;
  return stringifyExact(value, 2);
}

/** The text copied for a cell: like cellDetail, but NULL copies as an empty string. */
export function cellCopyText(value: unknown): string {
  return value === null || value === undefined ? '' : cellDetail(value);
}

/** A row as a JSON object with exact numbers (what "Copy row" puts on the clipboard). */
export function rowJson(fields: string[], row: Record<string, unknown>): string {
  const ordered: Record<string, unknown> = {};
  for (const f of fields) ordered[f] = row[f];
  return stringifyExact(ordered);
}

export function isJsonValue(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !isLosslessNumber(value);
}

export type ValueKind = 'null' | 'number' | 'boolean' | 'json' | 'text';

export function valueKind(value: unknown): ValueKind {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'number' || isLosslessNumber(value)) return 'number';
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'object') return 'json';
  return 'text';
}

/** Line breaks and tabs shown as symbols, so a cell stays one line. */
function oneLine(text: string): string {
  return /[\n\r\t]/.test(text) ? text.replace(/\r\n|\n|\r/g, '↵').replace(/\t/g, '⇥') : text;
}

/** Column types qrun reports for binary data (sent as base64). */
export function isBinaryType(type: string): boolean {
  return /^(bytea|blob|binary|varbinary|tinyblob|mediumblob|longblob)$/i.test(type);
}

/** Column types whose values read best right-aligned. */
export function isNumericType(type: string): boolean {
  return /^(int[248]?|integer|smallint|bigint|tinyint|mediumint|hugeint|ubigint|uinteger|usmallint|utinyint|float[48]?|double|real|numeric|decimal|number|oid)( unsigned)?(\(.*\))?$/i.test(
    type.trim(),
  );
}

/** Column types holding a date or time stamp (chart x-axis candidates). */
export function isTemporalType(type: string): boolean {
  return /^(date|timestamp|timestamptz|datetime|timestamp with(out)? time zone|timestamp_[a-z]+)/i.test(
    type.trim(),
  );
}
