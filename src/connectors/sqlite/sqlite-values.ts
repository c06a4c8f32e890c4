/**
 * SQLite values → CellValues. SQLite has five storage classes and better-sqlite3 (with safeIntegers)
 * hands them over exactly: INTEGER → bigint, REAL → number, TEXT → string, BLOB → Buffer, NULL → null.
 * Declared types do not change the stored value: a BOOLEAN column holds 0/1 integers (SQLite has no
 * boolean) and a DATETIME column holds whatever text or number was stored, so those pass through as is.
 */
import type { CellValue, ParameterValue } from '../connector.js';
import type { SqliteParameter } from './sqlite-session.js';

export function sqliteCell(value: unknown): CellValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint' || typeof value === 'number' || typeof value === 'string') return value;
  // A Buffer is a Uint8Array; hand over a plain view so consumers see one binary type.
  if (value instanceof Uint8Array) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new Error(`Unexpected SQLite value of type ${typeof value}.`);
}

/**
 * The storage class of a value, used as the column type when the column has no declared type
 * (an expression such as `SELECT 1 + 1`): SQLite types values, not expressions, so the first row decides.
 */
export function storageClass(value: CellValue | undefined): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'bigint') return 'INTEGER';
  if (typeof value === 'number') return 'REAL';
  if (typeof value === 'string') return 'TEXT';
  return 'BLOB';
}

/**
 * Parameters for better-sqlite3: it cannot bind booleans (→ 1/0), and binds every JS number as REAL,
 * so whole numbers go as bigint to bind as INTEGER (`SELECT ?` with 1 then reads back as 1, not 1.0).
 */
export function sqliteParameter(value: ParameterValue): SqliteParameter {
  if (typeof value === 'boolean') return value ? 1n : 0n;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  return value;
}
