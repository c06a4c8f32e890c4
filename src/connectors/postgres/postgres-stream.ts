import type { FieldDef } from 'pg';
import Cursor from 'pg-cursor';
import type {
  CellValue,
  ColumnInfo,
  ConnectorContext,
  ParameterValue,
  QueryStream,
  StreamOptions,
} from '../connector.js';
import { destinationForQuery } from '../network.js';
import { batchRows, errorText, secretsOf, throwIfAborted, type RawBatch } from '../support.js';
import { pgTarget, type PgConfig } from './postgres-connector.js';
import { copyOutRefused, toPgError } from './postgres-errors.js';
import { COPY_PREFIX, copyStatement, describeStatement, startCopy, type RawRow } from './postgres-copy.js';
import { PgSession, RAW_TYPES } from './postgres-session.js';
import { builtinType, decoderFor, resolvePgTypes, type PgDecoder } from './postgres-values.js';

/** The part of pg's Connection a refused COPY FROM STDIN needs (absent from its type declarations). */
interface CopyConnection {
  sendCopyFail(message: string): void;
}

/**
 * pg-cursor plus the two COPY messages it lacks: without them, a user's `COPY … FROM STDIN` or
 * `COPY … TO STDOUT` makes pg call a missing method inside the socket handler and the process dies.
 * FROM STDIN is refused (the server then reports an error); TO STDOUT data is dropped and flagged,
 * and the stream reports it as unsupported.
 */
class QrunCursor extends Cursor {
  copyOut = false;

  handleCopyInResponse(connection: CopyConnection): void {
    connection.sendCopyFail('qrun does not send data to COPY FROM STDIN.');
  }

  handleCopyData(): void {
    this.copyOut = true;
  }
}

/** `count` rows from the cursor (fewer means the portal is exhausted), and the result's fields. */
function read(
  session: PgSession,
  cursor: QrunCursor,
  count: number,
): Promise<RawBatch<RawRow> & { fields: FieldDef[] }> {
  return session.guard(
    new Promise((resolve, reject) => {
      cursor.read(count, (err, rows: RawRow[], result) => {
        if (err) reject(err);
        else if (cursor.copyOut) reject(copyOutRefused());
        else resolve({ rows, done: rows.length < count, fields: result.fields });
      });
    }),
  );
}

/**
 * The smallest batch (the page size, QRUN_PAGE_ROWS or `page_rows`) read through COPY. PostgreSQL sends
 * COPY's rows in 8 KB flushes, not row by row: a slow query with small pages would show its first pages
 * (and its progress) late. At 1,000 rows or more a page is that much data anyway (rows of 8 bytes or more);
 * small pages keep the cursor, which hands over each batch as soon as its rows exist.
 */
export const COPY_MIN_BATCH_ROWS = 1000;

/** Which way a statement's rows are read: `auto` chooses per statement (tests force one or the other). */
export type PgReadPath = 'auto' | 'cursor' | 'copy';

/**
 * One statement on its own connection (PgSession). A query without parameters that starts like one COPY
 * takes (postgres-copy.ts), read in batches of COPY_MIN_BATCH_ROWS or more, and that PostgreSQL's
 * Describe says returns rows runs as `COPY (…) TO STDOUT`;
 * everything else (parameters, DML, DDL, SHOW, a user's own COPY) through a pg-cursor that reads
 * `batchSize` rows per round trip. Either way the server holds what is not read yet, so memory stays flat.
 */
export async function streamPostgres(
  config: PgConfig,
  sql: string,
  parameters: readonly ParameterValue[],
  { signal, batchSize, warm }: StreamOptions,
  context: ConnectorContext,
  path: PgReadPath = 'auto',
): Promise<QueryStream> {
  throwIfAborted(signal);
  const size = batchRows(batchSize);
  const copy =
    path === 'copy' || (path === 'auto' && parameters.length === 0 && size >= COPY_MIN_BATCH_ROWS)
      ? copyStatement(sql)
      : undefined;
  if (path === 'copy' && copy === undefined) throw new Error(`Not a statement for COPY: ${sql}`);
  const destination = await destinationForQuery(pgTarget(config), context, signal, secretsOf(config));
  const session = new PgSession(config, destination, signal, warm);
  // Positions in COPY's errors count from the start of `COPY (`; the caller sent the statement alone.
  let shift = 0;
  return session.stream<RawRow>(
    async (client) => {
      // A statement that does not parse, or returns no rows, goes the cursor's way (and fails there as
      // the user would expect, with positions in their own text).
      const described =
        copy === undefined ? null : await session.guard(describeStatement(client, sql).catch(() => null));
      if (described !== null && copy !== undefined) {
        const columns = await columnsOf(session, described);
        const reader = startCopy(client, copy, described.length);
        try {
          const first = await session.guard(reader.read(size));
          shift = COPY_PREFIX.length;
          return { ...columns, first, read: () => session.guard(reader.read(size)) };
        } catch (err) {
          // A syntax error before any row is the wrapping, not the statement (copyStatement misread its
          // end): the cursor runs it as sent. Had it already run, it failed, so its work was rolled back.
          if (reader.received > 0 || errorText(err, 'code') !== '42601' || signal.aborted) {
            shift = COPY_PREFIX.length;
            throw err;
          }
        }
      }
      const cursor = client.query(
        new QrunCursor(sql, [...parameters], { rowMode: 'array', types: RAW_TYPES }),
      );
      const first = await read(session, cursor, size);
      return { ...(await columnsOf(session, first.fields)), first, read: () => read(session, cursor, size) };
    },
    (err) => toPgError(shiftPosition(err, shift), config, signal),
  );
}

/** The columns of `fields` and their decoders; types that are not built in are looked up on a side connection. */
async function columnsOf(
  session: PgSession,
  fields: FieldDef[],
): Promise<{ columns: ColumnInfo[]; decode: (rows: RawRow[]) => CellValue[][] }> {
  const oids = fields.map((f) => f.dataTypeID);
  const types = oids.every((oid) => builtinType(oid))
    ? new Map(oids.map((oid) => [oid, builtinType(oid)]))
    : await session.side((side) =>
        resolvePgTypes(oids, async (text, values) => {
          const result = await side.query<RawRow>({ text, values, rowMode: 'array' });
          return result.rows;
        }),
      );
  const columns: ColumnInfo[] = [];
  const decoders: PgDecoder[] = [];
  for (const field of fields) {
    const type = types.get(field.dataTypeID) ?? { name: String(field.dataTypeID), kind: 'text' as const };
    columns.push({ name: field.name, type: type.name });
    decoders.push(decoderFor(type));
  }
  return { columns, decode: (rows) => decodeRows(rows, decoders) };
}

/** `err` with its position moved back by `shift` characters (an error inside the COPY's statement). */
function shiftPosition(err: unknown, shift: number): unknown {
  if (shift === 0 || typeof err !== 'object' || err === null) return err;
  const position = Number(Reflect.get(err, 'position'));
  if (Number.isInteger(position))
    Reflect.set(err, 'position', position > shift ? String(position - shift) : undefined);
  return err;
}

/** Decodes each row in place: the raw text arrays become the CellValue rows (no second array per row). */
function decodeRows(rows: RawRow[], decoders: PgDecoder[]): CellValue[][] {
  const width = decoders.length;
  const out = rows as (RawRow | CellValue[])[];
  for (let r = 0; r < rows.length; r++) {
    const row = out[r] as CellValue[];
    for (let c = 0; c < width; c++) {
      const text = row[c];
      row[c] = text === null || text === undefined ? null : decoders[c]!(text as string);
    }
  }
  return out as CellValue[][];
}
