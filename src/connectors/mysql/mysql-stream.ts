import type { Connection, FieldPacket, QueryOptions, TypeCast } from 'mysql2';
import type {
  CellValue,
  ConnectorContext,
  ParameterValue,
  QueryStream,
  StreamOptions,
} from '../connector.js';
import { destinationForQuery } from '../network.js';
import { batchRows, secretsOf, throwIfAborted, type RawBatch } from '../support.js';
import { mysqlTarget, type MysqlConfig } from './mysql-connector.js';
import { toMysqlError } from './mysql-errors.js';
import { MysqlSession } from './mysql-session.js';
import { mysqlColumn, type MysqlColumn } from './mysql-values.js';

/** Geometry as MySQL's own bytes (SRID + WKB) rather than the driver's lossy {x, y} objects. */
const typeCast: TypeCast = (field, next) => (field.type === 'GEOMETRY' ? field.buffer() : next());

/**
 * The rows of one statement. They arrive as driver events; the socket is paused whenever a full batch
 * is waiting, so at most about one batch sits in memory while the consumer works on the previous one.
 */
class MysqlResult {
  /** undefined until the first result set's metadata arrives; null for statements without rows. */
  columns: MysqlColumn[] | null | undefined;
  private buffer: unknown[][] = [];
  private ended = false;
  private failure: { error: unknown } | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly session: MysqlSession,
    private readonly size: number,
  ) {}

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

  /** The next batch of raw rows, and whether the result is complete with it. */
  async read(): Promise<RawBatch<unknown[]>> {
    await this.until(() => this.buffer.length >= this.size || this.ended);
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
  return session.stream<unknown[]>(
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
        decode: (rows) => decodeRows(rows, columns),
      };
    },
    (err) => toMysqlError(err, config, signal),
  );
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
  // Every cell now holds a CellValue: the arrays are reused rather than copied (this is the hot path).
  return rows as CellValue[][];
}
