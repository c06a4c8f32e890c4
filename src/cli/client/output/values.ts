import { isLosslessNumber, stringify } from 'lossless-json';

/** One result row as parsed losslessly: numbers are LosslessNumbers holding their exact text. */
export type Row = Record<string, unknown>;

/** A column's name and, where the server gave it, its source type. */
export interface Column {
  name: string;
  type?: string;
}

/**
 * A value as text, exactly as the API wrote it (64-bit integers and decimals digit for digit); null for
 * SQL NULL. JSON values (objects, arrays) are written back as compact JSON.
 */
export function valueText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (isLosslessNumber(value)) return value.value;
  if (typeof value === 'boolean' || typeof value === 'number' || typeof value === 'bigint') {
    return String(value);
  }
  return stringify(value) ?? '';
}

/** One row as compact JSON, values exactly as received. */
export function rowJson(row: Row): string {
  return stringify(row) ?? '{}';
}

const NUMERIC_TYPE =
  /^(u?(tiny|small|medium|big|huge)?int(eger)?\d*|u?hugeint|int[248]|serial|bigserial|numeric|decimal|dec|float\d*|double( precision)?|real|number|money)\b/i;

/** Whether a column holds numbers (right-aligned in a table): by its type, or else by its values. */
export function isNumericColumn(column: Column, rows: readonly Row[]): boolean {
  if (column.type) return NUMERIC_TYPE.test(column.type.trim());
  let seen = false;
  for (const row of rows) {
    const value = row[column.name];
    if (value === null || value === undefined) continue;
    if (!isLosslessNumber(value)) return false;
    seen = true;
  }
  return seen;
}
