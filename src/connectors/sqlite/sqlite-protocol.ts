/**
 * Messages between the SQLite connector (main process) and its worker process (sqlite-worker.ts).
 *
 * The exchange is pull-based: the worker sends the columns with the first batch, then one batch per
 * `next` request and nothing unasked, so at most one batch is ever in flight (memory stays flat).
 * The IPC channel uses Node's "advanced" (structured clone) serialization, so bigint and Uint8Array
 * cross it unchanged.
 */
import type { CellValue, ColumnInfo } from '../connector.js';

/** What better-sqlite3 can bind: booleans become 0/1 and safe integers bigint before sending. */
export type SqliteParameter = null | number | bigint | string;

export interface StartRequest {
  type: 'start';
  /** Absolute path, already checked to be a file in the organization's directory. */
  path: string;
  /** Open with SQLITE_OPEN_READONLY: nothing can change the file. */
  readOnly: boolean;
  sql: string;
  parameters: SqliteParameter[];
  batchSize: number;
}

export interface NextRequest {
  type: 'next';
}

export type ToWorker = StartRequest | NextRequest;

/** The first reply: the columns and the first batch (needed anyway to type expression columns). */
export interface ColumnsReply {
  type: 'columns';
  columns: ColumnInfo[];
  rows: CellValue[][];
  done: boolean;
}

export interface BatchReply {
  type: 'batch';
  rows: CellValue[][];
  done: boolean;
}

export interface ErrorReply {
  type: 'error';
  message: string;
  code?: string;
}

export type FromWorker = ColumnsReply | BatchReply | ErrorReply;
