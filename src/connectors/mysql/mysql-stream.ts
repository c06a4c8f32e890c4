import type { Connection, FieldPacket, TypeCast } from 'mysql2';
import type {
  CellValue,
  ConnectorContext,
  ParameterValue,
  QueryStream,
  StreamOptions,
} from '../connector.js';
import { destinationForQuery } from '../network.js';
import { asIs, batchRows, secretsOf, throwIfAborted, type RawBatch } from '../support.js';
import { mysqlTarget, type MysqlConfig } from './mysql-connector.js';
import { toMysqlError } from './mysql-errors.js';
import { readTextRows, TextRowDecoder } from './mysql-rows.js';
import { MysqlSession } from './mysql-session.js';
import { mysqlColumn, type MysqlColumn } from './mysql-values.js';

/** Geometry as MySQL's own bytes (SRID + WKB) rather than the driver's lossy {x, y} objects. */
const typeCast: TypeCast = (field, next) => (field.type === 'GEOMETRY' ? field.buffer() : next());

/**
 * The rows of one statement. They arrive as driver events (row packets, for the text protocol); the
 * socket is paused whenever a full batch is waiting, so at most about one batch sits in memory while
 * the consumer works on the previous one. Rows are decoded as they arrive.
 */
class MysqlResult {
  /** undefined until the first result set's metadata arrives; null for statements without rows. */
  columns: MysqlColumn[] | null | undefined;
  private buffer: CellValue[][] = [];
  private ended = false;
  private failure: { error: unknown } | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly session: MysqlSession,
    private readonly size: number,
  ) {}

  /**
   * Sends the statement: the text protocol without parameters (row packets decoded by
   * TextRowDecoder), a prepared statement (real binding, binary protocol, mysql2's values mapped by
   * mysql-values.ts) with them. Resolves once the first result's columns (or their absence) are known.
   */
  async start(connection: Connection, sql: string, parameters: readonly ParameterValue[]): Promise<void> {
    const binary = parameters.length > 0;
    const command = binary
      ? connection.execute({ sql, rowsAsArray: true, typeCast, values: [...parameters] })
      : connection.query({ sql, rowsAsArray: true });
    let resultSets = 0;
    let decoder: TextRowDecoder | undefined;
    command.on('fields', (fields: FieldPacket[] | undefined) => {
      // Only the first result set is the query's result (a CALL may add more, and a final OK).
      if (resultSets++ === 0) {
        this.columns = fields ? fields.map(mysqlColumn) : null;
        if (fields && !binary) decoder = new TextRowDecoder(fields);
      }
      this.notify();
    });
    if (!binary) {
      readTextRows(command, (packet) => {
        if (resultSets !== 1 || decoder === undefined) return;
        let row: CellValue[];
        try {
          row = decoder.decode(packet);
        } catch (error) {
          // A packet this decoder cannot read: the statement fails (and is killed on close).
          decoder = undefined;
          this.fail(error);
          return;
        }
        this.add(connection, row);
      });
    }
    command.on('result', (row: unknown, index: unknown) => {
      if (index !== 0 || !this.columns || !Array.isArray(row)) return;
      // The text protocol's rows never come this way (readTextRows); if they do, mysql2 changed.
      if (!binary)
        this.fail(new Error('mysql2 emitted a text-protocol row: its row state was not replaced.'));
      else this.add(connection, decodeRow(row, this.columns));
    });
    command.on('error', (error: unknown) => {
      this.failure ??= { error };
      this.ended = true;
      this.session.statementEnded(error);
      this.notify();
    });
    command.on('end', () => {
      this.ended = true;
      this.session.statementEnded();
      this.notify();
    });
    await this.until(() => this.columns !== undefined || this.ended);
    if (this.failure) throw this.failure.error;
    this.columns ??= null;
  }

  private add(connection: Connection, row: CellValue[]): void {
    this.buffer.push(row);
    // A full batch: stop reading the socket and hand the batch over (no wake-up per row).
    if (this.buffer.length >= this.size) {
      connection.pause();
      this.notify();
    }
  }

  /** Fails the result with `error` (the first failure wins); the statement runs on until closed. */
  private fail(error: unknown): void {
    this.failure ??= { error };
    this.notify();
  }

  /** The next batch of rows, and whether the result is complete with it. */
  async read(): Promise<RawBatch<CellValue[]>> {
    await this.until(() => this.buffer.length >= this.size || this.ended || this.failure !== undefined);
    if (this.failure) throw this.failure.error;
    const rows = this.buffer;
    this.buffer = [];
    if (this.ended) {
      await this.session.close();
      return { rows, done: true };
    }
    this.session.resume();
    return { rows, done: false };
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async until(ready: () => boolean): Promise<void> {
    while (!ready()) {
      await this.session.guard(new Promise<void>((resolve) => (this.wake = resolve)));
    }
  }
}

/** One statement on its own connection (MysqlSession), its rows streamed with socket back-pressure. */
export async function streamMysql(
  config: MysqlConfig,
  sql: string,
  parameters: readonly ParameterValue[],
  { signal, batchSize }: StreamOptions,
  context: ConnectorContext,
): Promise<QueryStream> {
  throwIfAborted(signal);
  const size = batchRows(batchSize);
  const secrets = secretsOf({ password: config.passwd });
  const destination = await destinationForQuery(mysqlTarget(config), context, signal, secrets);
  const session = new MysqlSession(config, destination, signal);
  return session.stream<CellValue[]>(
    async (connection) => {
      const result = new MysqlResult(session, size);
      await result.start(connection, sql, parameters);
      const columns = result.columns ?? [];
      // No result set (INSERT, DDL, SET): drain to the end so errors still surface, then release.
      if (columns.length === 0) await result.read();
      return {
        columns: columns.map((c) => c.info),
        first: columns.length === 0 ? { rows: [], done: true } : undefined,
        read: () => result.read(),
        decode: asIs,
      };
    },
    (err) => toMysqlError(err, config, signal),
  );
}

/** A binary-protocol row (mysql2's values) mapped in place: the driver builds a fresh array per row. */
function decodeRow(row: unknown[], columns: MysqlColumn[]): CellValue[] {
  const count = columns.length;
  for (let c = 0; c < count; c++) {
    const value = row[c];
    row[c] = value === null || value === undefined ? null : columns[c]!.decode(value);
  }
  // A row shorter or longer than the columns would be a driver bug; the encoder reports it.
  return row as CellValue[];
}
