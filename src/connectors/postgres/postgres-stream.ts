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
import { batchRows, secretsOf, throwIfAborted, type RawBatch } from '../support.js';
import { pgTarget, type PgConfig } from './postgres-connector.js';
import { copyOutRefused, toPgError } from './postgres-errors.js';
import { PgSession, RAW_TYPES } from './postgres-session.js';
import { builtinType, decoderFor, resolvePgTypes, type PgDecoder } from './postgres-values.js';

type RawRow = (string | null)[];

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
 * One statement on its own connection (PgSession): a pg-cursor reads `batchSize` rows per round trip,
 * so the server holds the rest and memory stays flat. The first batch is read here, since it brings
 * the columns; types that are not built in are looked up on a side connection.
 */
export async function streamPostgres(
  config: PgConfig,
  sql: string,
  parameters: readonly ParameterValue[],
  { signal, batchSize }: StreamOptions,
  context: ConnectorContext,
): Promise<QueryStream> {
  throwIfAborted(signal);
  const size = batchRows(batchSize);
  const destination = await destinationForQuery(pgTarget(config), context, signal, secretsOf(config));
  const session = new PgSession(config, destination, signal);
  return session.stream<RawRow>(
    async (client) => {
      const cursor = client.query(
        new QrunCursor(sql, [...parameters], { rowMode: 'array', types: RAW_TYPES }),
      );
      const first = await read(session, cursor, size);
      const oids = first.fields.map((f) => f.dataTypeID);
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
      for (const field of first.fields) {
        const type = types.get(field.dataTypeID) ?? { name: String(field.dataTypeID), kind: 'text' as const };
        columns.push({ name: field.name, type: type.name });
        decoders.push(decoderFor(type));
      }
      return {
        columns,
        // Fewer rows than asked for means the portal is exhausted: the connection is released at once.
        first,
        read: () => read(session, cursor, size),
        decode: (rows) => decodeRows(rows, decoders),
      };
    },
    (err) => toPgError(err, config, signal),
  );
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
