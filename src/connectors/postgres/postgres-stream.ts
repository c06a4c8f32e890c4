import type pg from 'pg';
import type { FieldDef } from 'pg';
import type { CheckedDestination } from '../../net/egress-policy.js';
import { DatabaseError, QueryAbortedError } from '../connector.js';
import type { CellValue, ColumnInfo, ConnectorContext, ParameterValue, QueryStream } from '../connector.js';
import { destinationForQuery } from '../egress.js';
import {
  backendPid,
  cancelPgBackend,
  endPgClient,
  openPgClient,
  RAW_TYPES,
  toPgError,
  withSideClient,
  type PgConfig,
} from './postgres-session.js';
import { QrunCursor } from './postgres-cursor.js';
import { resolvePgTypes } from './postgres-types.js';
import { builtinType, decoderFor, type PgDecoder } from './postgres-values.js';
import { closingIterable, raceAbort } from '../abortable.js';

type RawRow = (string | null)[];

const COPY_OUT_MESSAGE = 'COPY … TO STDOUT is not supported by qrun; run the SELECT itself.';

interface RawBatch {
  rows: RawRow[];
  fields: FieldDef[];
}

/**
 * One statement on its own connection: a pg-cursor reads `batchSize` rows per round trip, so the
 * server holds the rest and memory stays flat. Abort cancels the backend's statement from a side
 * connection and ends the client; every exit path ends the client exactly once.
 */
class PgRun {
  private client: pg.Client | undefined;
  private closing: Promise<void> | undefined;
  private readonly onAbort = () => void this.close(true);

  constructor(
    private readonly config: PgConfig,
    /** Checked once per statement; its side connections (types, cancel) reach the same addresses. */
    private readonly destination: CheckedDestination,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  async connect(): Promise<pg.Client> {
    const opening = openPgClient(this.config, this.destination);
    // Ends a client that finishes connecting after an abort.
    opening.then(
      async (c) => {
        if (this.closing) await endPgClient(c);
        else this.client = c;
      },
      () => undefined,
    );
    return this.guard(opening);
  }

  read(cursor: QrunCursor, count: number): Promise<RawBatch> {
    return this.guard(
      new Promise<RawBatch>((resolve, reject) => {
        cursor.read(count, (err, rows: RawRow[], result) => {
          if (err) reject(err);
          else if (cursor.copyOut) reject(new DatabaseError(COPY_OUT_MESSAGE, '0A000'));
          else resolve({ rows, fields: result.fields });
        });
      }),
    );
  }

  /** `promise`, or QueryAbortedError the moment the signal fires. */
  guard<T>(promise: Promise<T>): Promise<T> {
    return raceAbort(promise, this.signal);
  }

  /** Idempotent. With `cancel`, first stops the statement on the server (ending alone would not). */
  close(cancel = false): Promise<void> {
    this.closing ??= (async () => {
      this.signal.removeEventListener('abort', this.onAbort);
      const client = this.client;
      if (!client) return;
      const pid = backendPid(client);
      if (cancel && pid !== null) {
        await cancelPgBackend(this.config, this.destination, pid).catch(() => undefined);
      }
      await endPgClient(client);
    })();
    return this.closing;
  }
}

export async function streamPostgres(
  config: PgConfig,
  sql: string,
  parameters: readonly ParameterValue[],
  signal: AbortSignal,
  batchSize: number,
  context: ConnectorContext,
): Promise<QueryStream> {
  if (signal.aborted) throw new QueryAbortedError(signal.reason);
  // A hint: anything unusable falls back to a sensible batch.
  const size = Number.isFinite(batchSize) && batchSize >= 1 ? Math.floor(batchSize) : 1000;
  let destination: CheckedDestination;
  try {
    destination = await raceAbort(destinationForQuery(config, context), signal);
  } catch (err) {
    throw toPgError(err, config, signal);
  }
  const run = new PgRun(config, destination, signal);
  try {
    const client = await run.connect();
    const cursor = client.query(new QrunCursor(sql, [...parameters], { rowMode: 'array', types: RAW_TYPES }));
    const first = await run.read(cursor, size);
    const oids = first.fields.map((f) => f.dataTypeID);
    const types = oids.every((oid) => builtinType(oid))
      ? new Map(oids.map((oid) => [oid, builtinType(oid)]))
      : await run.guard(
          withSideClient(config, destination, (side) =>
            resolvePgTypes(oids, async (text, values) => {
              const result = await side.query<RawRow>({ text, values, rowMode: 'array' });
              return result.rows;
            }),
          ),
        );
    const columns: ColumnInfo[] = [];
    const decoders: PgDecoder[] = [];
    for (const field of first.fields) {
      const type = types.get(field.dataTypeID) ?? { name: String(field.dataTypeID), kind: 'text' as const };
      columns.push({ name: field.name, type: type.name });
      decoders.push(decoderFor(type));
    }
    // Fewer rows than asked for means the portal is exhausted: release the connection at once.
    const done = first.rows.length < size;
    if (done) await run.close();
    return {
      columns,
      rows: closingIterable(batches(run, cursor, first.rows, done, decoders, size, config, signal), run),
    };
  } catch (err) {
    await run.close(signal.aborted);
    throw toPgError(err, config, signal);
  }
}

async function* batches(
  run: PgRun,
  cursor: QrunCursor,
  firstRows: RawRow[],
  firstDone: boolean,
  decoders: PgDecoder[],
  size: number,
  config: PgConfig,
  signal: AbortSignal,
): AsyncGenerator<CellValue[][]> {
  try {
    let rows = firstRows;
    let done = firstDone;
    for (;;) {
      if (signal.aborted) throw new QueryAbortedError(signal.reason);
      if (rows.length > 0) yield decodeRows(rows, decoders);
      if (done) return;
      rows = (await run.read(cursor, size)).rows;
      done = rows.length < size;
      if (done) await run.close();
    }
  } catch (err) {
    throw toPgError(err, config, signal);
  } finally {
    await run.close(signal.aborted);
  }
}

function decodeRows(rows: RawRow[], decoders: PgDecoder[]): CellValue[][] {
  const out: CellValue[][] = new Array<CellValue[]>(rows.length);
  for (let r = 0; r < rows.length; r++) {
    const raw = rows[r] ?? [];
    const row: CellValue[] = new Array<CellValue>(raw.length);
    for (let c = 0; c < raw.length; c++) {
      const text = raw[c];
      const decode = decoders[c];
      row[c] = text === null || text === undefined || !decode ? null : decode(text);
    }
    out[r] = row;
  }
  return out;
}
