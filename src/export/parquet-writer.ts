import { createReadStream, realpathSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { planColumns, type ColumnKind } from './column-types.js';
import { pageRows, valueText, type StoredResult } from './stored-rows.js';

/**
 * DuckDB's memory for one export. The staging table lives in a database file in the export's temp
 * directory, so its blocks leave memory once written; with `:memory:` they could only be spilled, and the
 * process grew by 185 MB over 5,000,000 rows against about 115 MB this way, the same for 1 and 3 million
 * rows (docs/PERFORMANCE.md, "Exports").
 */
const MEMORY_LIMIT = '48MB';

/**
 * Parquet, written by DuckDB (docs/ARCHITECTURE.md "Exports"): a private instance on a database file in a
 * fresh 0700 temp directory (one thread, MEMORY_LIMIT) gets the rows page by page through the Appender
 * into a staging table of text columns, then `COPY (SELECT <typed casts>) TO '<dir>/result.parquet'`
 * writes the file with the column types of planColumns (BIGINT, UBIGINT, DECIMAL(p,s), DOUBLE, BOOLEAN,
 * DATE, TIMESTAMP, TIMESTAMPTZ as UTC, BLOB, VARCHAR for JSON and text, lists). The file is streamed out
 * and the directory removed when the download ends, whether it completes or not.
 */
export async function* parquetChunks(result: StoredResult): AsyncGenerator<Buffer> {
  if (result.fields.length === 0) throw new RangeError('Parquet needs at least one column.');
  const columns = await planColumns(result);
  const dir = realpathSync(await mkdtemp(join(tmpdir(), 'qrun-export-')));
  try {
    const file = join(dir, 'result.parquet');
    const instance = await DuckDBInstance.create(join(dir, 'staging.duckdb'), {
      memory_limit: MEMORY_LIMIT,
      threads: '1',
      temp_directory: join(dir, 'spill'),
      preserve_insertion_order: 'true',
      autoinstall_known_extensions: 'false',
    });
    try {
      const connection = await instance.connect();
      try {
        const staging = columns.map((_, i) => `c${i} VARCHAR`).join(', ');
        await connection.run(`CREATE TABLE staging (${staging})`);
        const appender = await connection.createAppender('staging');
        const jsonColumns = columns.map((c) => c.kind.kind === 'json');
        for await (const page of result.pages()) {
          for (const row of pageRows(page, columns.length)) {
            for (let i = 0; i < columns.length; i++) {
              const raw = row[i]!;
              const text = raw === 'null' ? null : jsonColumns[i] ? raw : valueText(raw);
              if (text === null) appender.appendNull();
              else appender.appendVarchar(text);
            }
            appender.endRow();
          }
          appender.flushSync();
        }
        appender.closeSync();
        const casts = columns.map((c, i) => `${castOf(c.kind, `c${i}`)} AS ${quoteIdent(c.name)}`);
        const select = `SELECT ${casts.join(', ')} FROM staging`;
        await connection.run(`COPY (${select}) TO ${quoteLiteral(file)} (FORMAT parquet)`);
        await connection.run('DROP TABLE staging');
      } finally {
        connection.closeSync();
      }
    } finally {
      instance.closeSync();
    }
    for await (const chunk of createReadStream(file, { highWaterMark: 256 * 1024 })) {
      yield chunk as Buffer;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The SQL that turns a staging column's text into the column's type. */
function castOf(kind: ColumnKind, column: string): string {
  switch (kind.kind) {
    case 'binary':
      return `from_base64(${column})`;
    case 'json':
    case 'string':
      return column;
    case 'list':
      return `CAST(CAST(${column} AS JSON) AS ${duckType(kind)})`;
    default:
      return `CAST(${column} AS ${duckType(kind)})`;
  }
}

function duckType(kind: ColumnKind): string {
  switch (kind.kind) {
    case 'int64':
      return 'BIGINT';
    case 'uint64':
      return 'UBIGINT';
    case 'decimal':
      return `DECIMAL(${kind.precision},${kind.scale})`;
    case 'float64':
      return 'DOUBLE';
    case 'bool':
      return 'BOOLEAN';
    case 'date':
      return 'DATE';
    case 'timestamp':
      return 'TIMESTAMP';
    case 'timestamptz':
      return 'TIMESTAMPTZ';
    case 'binary':
      return 'BLOB';
    case 'json':
    case 'string':
      return 'VARCHAR';
    case 'list':
      return `${duckType(kind.item)}[]`;
  }
}

function quoteIdent(name: string): string {
  return '"' + name.replaceAll('"', '""') + '"';
}

function quoteLiteral(text: string): string {
  return "'" + text.replaceAll("'", "''") + "'";
}
