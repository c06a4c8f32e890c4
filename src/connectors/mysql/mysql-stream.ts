import type { Connection, FieldPacket, QueryOptions, TypeCast } from 'mysql2';
import type { CheckedDestination } from '../../net/egress-policy.js';
import { QueryAbortedError } from '../connector.js';
import type { CellValue, ConnectorContext, ParameterValue, QueryStream } from '../connector.js';
import { destinationForQuery } from '../egress.js';
import {
  endMysqlConnection,
  killMysqlQuery,
  openMysqlConnection,
  toMysqlError,
  type MysqlConfig,
} from './mysql-session.js';
import { mysqlColumn, type MysqlColumn } from './mysql-values.js';
import { closingIterable, raceAbort } from '../abortable.js';

/** Geometry as MySQL's own bytes (SRID + WKB) rather than the driver's lossy {x, y} objects. */
const typeCast: TypeCast = (field, next) => (field.type === 'GEOMETRY' ? field.buffer() : next());

/**
 * One statement on its own connection. Rows arrive as driver events; the socket is paused whenever a
 * full batch is waiting, so at most about one batch sits in memory while the consumer works on the
 * previous one. Abort runs KILL QUERY from a side connection and destroys the connection.
 */
class MysqlRun {
  private connection: Connection | undefined;
  private closing: Promise<void> | undefined;
  private readonly onAbort = () => void this.close(true);

  /** undefined until the first result set's metadata arrives; null for statements without rows. */
  columns: MysqlColumn[] | null | undefined;
  private buffer: unknown[][] = [];
  private ended = false;
  private failure: { error: unknown } | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly config: MysqlConfig,
    /** Checked once per statement; the KILL QUERY side connection reaches the same addresses. */
    private readonly destination: CheckedDestination,
    private readonly signal: AbortSignal,
    private readonly size: number,
  ) {
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  async connect(): Promise<Connection> {
    const opening = openMysqlConnection(this.config, this.destination);
    // Destroys a connection that finishes opening after an abort.
    opening.then(
      (c) => {
        if (this.closing) c.destroy();
        else this.connection = c;
      },
      () => undefined,
    );
    return this.guard(opening);
  }

  /**
   * Sends the statement: the text protocol without parameters, a prepared statement (real binding,
   * binary protocol) with them. Resolves once the first result's columns (or its absence) are known.
   */
  async start(connection: Connection, sql: string, parameters: readonly ParameterValue[]): Promise<void> {
    const options: QueryOptions = { sql, rowsAsArray: true, typeCast };
    const command =
      parameters.length > 0
        ? connection.execute({ ...options, values: [...parameters] })
        : connection.query(options);
    let resultSets = 0;
    command.on('fields', (fields: FieldPacket[] | undefined) => {
      // Only the first result set is the query's result (a CALL may add more, and a final OK).
      if (resultSets++ === 0) this.columns = fields ? fields.map(mysqlColumn) : null;
      this.notify();
    });
    command.on('result', (row: unknown, index: unknown) => {
      if (index !== 0 || !this.columns || !Array.isArray(row)) return;
      this.buffer.push(row);
      // A full batch: stop reading the socket and hand the batch over (no wake-up per row).
      if (this.buffer.length >= this.size) {
        connection.pause();
        this.notify();
      }
    });
    command.on('error', (error: unknown) => {
      this.failure ??= { error };
      this.ended = true;
      this.notify();
    });
    command.on('end', () => {
      this.ended = true;
      this.notify();
    });
    await this.until(() => this.columns !== undefined || this.ended);
    if (this.failure) throw this.failure.error;
    this.columns ??= null;
  }

  /** The next batch of raw rows, and whether the result is complete with it. */
  async next(): Promise<{ rows: unknown[][]; done: boolean }> {
    await this.until(() => this.buffer.length >= this.size || this.ended);
    if (this.failure) throw this.failure.error;
    const rows = this.buffer;
    this.buffer = [];
    if (this.ended) {
      await this.close();
      return { rows, done: true };
    }
    this.connection?.resume();
    return { rows, done: false };
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async until(ready: () => boolean): Promise<void> {
    while (!ready()) {
      await this.guard(new Promise<void>((resolve) => (this.wake = resolve)));
    }
  }

  /** `promise`, or QueryAbortedError the moment the signal fires. */
  guard<T>(promise: Promise<T>): Promise<T> {
    return raceAbort(promise, this.signal);
  }

  /**
   * Idempotent. A statement still running (abort, or the consumer stopped early) is killed on the
   * server first: dropping the socket alone would leave it running until it next writes.
   */
  close(kill = false): Promise<void> {
    this.closing ??= (async () => {
      this.signal.removeEventListener('abort', this.onAbort);
      const connection = this.connection;
      if (!connection) return;
      if ((kill || !this.ended) && connection.threadId) {
        await killMysqlQuery(this.config, this.destination, connection.threadId).catch(() => undefined);
        connection.destroy();
        return;
      }
      const fatal = (this.failure?.error as { fatal?: unknown } | undefined)?.fatal === true;
      if (fatal) connection.destroy();
      else await endMysqlConnection(connection);
    })();
    return this.closing;
  }
}

export async function streamMysql(
  config: MysqlConfig,
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
    throw toMysqlError(err, config, signal);
  }
  const run = new MysqlRun(config, destination, signal, size);
  try {
    const connection = await run.connect();
    await run.start(connection, sql, parameters);
    const columns = run.columns ?? [];
    if (columns.length === 0) {
      // No result set (INSERT, DDL, SET): drain to the end so errors still surface, then release.
      await run.next();
    }
    return {
      columns: columns.map((c) => c.info),
      rows: closingIterable(batches(run, columns, config, signal), run),
    };
  } catch (err) {
    await run.close(signal.aborted);
    throw toMysqlError(err, config, signal);
  }
}

async function* batches(
  run: MysqlRun,
  columns: MysqlColumn[],
  config: MysqlConfig,
  signal: AbortSignal,
): AsyncGenerator<CellValue[][]> {
  if (columns.length === 0) return;
  try {
    for (;;) {
      if (signal.aborted) throw new QueryAbortedError(signal.reason);
      const { rows, done } = await run.next();
      if (rows.length > 0) yield decodeRows(rows, columns);
      if (done) return;
    }
  } catch (err) {
    throw toMysqlError(err, config, signal);
  } finally {
    await run.close(signal.aborted);
  }
}

/** Decodes in place: the driver builds a fresh array per row, so no second array is needed. */
function decodeRows(rows: unknown[][], columns: MysqlColumn[]): CellValue[][] {
  const count = columns.length;
  for (const row of rows) {
    for (let c = 0; c < count; c++) {
      const value = row[c];
      row[c] = value === null || value === undefined ? null : columns[c]!.decode(value);
    }
    // A row shorter or longer than the columns would be a driver bug; the encoder reports it.
  }
  return rows as CellValue[][];
}
