import { randomBytes } from 'node:crypto';
import {
  DOUBLE,
  DuckDBTypeId,
  ResultReturnType,
  StatementType,
  type DuckDBConnection,
  type DuckDBPreparedStatement,
  type DuckDBResult,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api';
import {
  type CellValue,
  type ColumnInfo,
  type ConnectorContext,
  type ParameterValue,
  type QueryStream,
  type StreamOptions,
} from '../connector.js';
import { asIs, batchRows, checkedAtOpen, rowBatches, throwIfAborted, type RawBatch } from '../support.js';
import type { DuckdbConfig } from './duckdb-connector.js';
import {
  EMPTY_QUERY,
  READ_ONLY_REFUSAL,
  duckdbError,
  endedShort,
  extractError,
  refusal,
  userLines,
} from './duckdb-errors.js';
import { DuckSession, lease, resolveTarget, type Lease } from './duckdb-session.js';
import { cellConverter, duckdbTypeName, type CellConverter } from './duckdb-values.js';

/**
 * One DuckDB statement → batches of rows. A query is spooled into a temporary table first and read
 * from there (see runStatement: DuckDB cannot report an error that happens mid-stream), other
 * statements are streamed as far as DuckDB streams them.
 */

/** DuckDB infers a parameter's type from the JS value; numbers beyond 2^53 can only be doubles. */
function parameterTypes(parameters: readonly ParameterValue[]): (DuckDBType | undefined)[] {
  return parameters.map((p) => (typeof p === 'number' && !Number.isSafeInteger(p) ? DOUBLE : undefined));
}

function bindParameters(prepared: DuckDBPreparedStatement, parameters: readonly ParameterValue[]): void {
  // bind() infers the type where an entry is undefined; the declared type omits that case.
  prepared.bind([...parameters], parameterTypes(parameters) as DuckDBType[]);
}

/** A statement that has run to completion, ready to be read chunk by chunk. */
interface Finished {
  columns: ColumnInfo[];
  converters: CellConverter[];
  result: DuckDBResult;
  /** The rows the statement produced, if DuckDB said: reading must deliver exactly these. */
  rowCount: number | undefined;
}

function finished(names: readonly string[], result: DuckDBResult, rowCount: number | undefined): Finished {
  const types = result.columnTypes();
  const columns = types.map((type, i) => ({ name: names[i] ?? '', type: duckdbTypeName(type) }));
  return { columns, converters: types.map(cellConverter), result, rowCount };
}

/**
 * Statements that write files or open other database files, refused on a read-only connection. An
 * access_mode READ_ONLY instance still runs them (COPY … TO and EXPORT write wherever
 * allowed_directories permits, ATTACH … (READ_WRITE) opens another file for writing), and a
 * `:memory:` database cannot be opened read-only at all. COPY is refused in both directions: the
 * statement type does not tell them apart, and read_csv() and friends read files without it.
 */
const WRITES_FILES: ReadonlySet<StatementType> = new Set([
  StatementType.COPY,
  StatementType.EXPORT,
  StatementType.ATTACH,
  StatementType.COPY_DATABASE,
]);

/** The first word of `sql`, upper-cased, after white space and comments. */
function leadingKeyword(sql: string): string {
  return (/^[A-Za-z_]+/.exec(sql.slice(leadingKeywordStart(sql)))?.[0] ?? '').toUpperCase();
}

/** Where the first word of `sql` starts, after white space and comments. */
function leadingKeywordStart(sql: string): number {
  let at = 0;
  for (;;) {
    while (at < sql.length && /\s/.test(sql[at]!)) at++;
    if (sql.startsWith('--', at)) {
      const end = sql.indexOf('\n', at);
      at = end < 0 ? sql.length : end + 1;
    } else if (sql.startsWith('/*', at)) {
      const end = sql.indexOf('*/', at + 2);
      at = end < 0 ? sql.length : end + 2;
    } else {
      return at;
    }
  }
}

/**
 * `CALL f(…)` as the query `FROM f(…)`, which DuckDB can spool: it materializes a CALL's whole result
 * in plain memory, outside memory_limit, even when asked to stream it (measured: `CALL range(6e7)`
 * held 600 MB before its first row). Same length and line breaks, so error positions still match.
 */
function callAsQuery(sql: string): string {
  const at = leadingKeywordStart(sql);
  return `${sql.slice(0, at)}FROM${sql.slice(at + 'CALL'.length)}`;
}

/**
 * Runs the one statement of `sql` to completion before any row is read, because DuckDB reports an
 * error that happens while a streamed result is being fetched as a normal end: fetchChunk() returns
 * an empty chunk, and duckdb_result_error, the only way to its message, is not in the bindings.
 * Run to completion instead, the statement's promise rejects with the database's message.
 *
 * A query (statement type SELECT, or a CALL read as `FROM …`) is spooled into a temporary table,
 * whose pages DuckDB's buffer manager holds within the memory limit and spills to the temp directory
 * beyond it; that table is then streamed. (A materialized result would not do: DuckDB keeps it in
 * plain memory, outside the limit.) Any other statement, or a query that cannot be the body of
 * CREATE TABLE … AS (DESCRIBE, SHOW, SUMMARIZE, PRAGMA, EXPLAIN, … RETURNING), is streamed as DuckDB
 * allows: their errors come before the first row, except in the rare statement that both streams
 * and fails part-way, which is reported as failed without DuckDB's message (see batches()).
 * Returns undefined for a statement without a result set.
 */
async function runStatement(
  session: DuckSession,
  sql: string,
  parameters: readonly ParameterValue[],
  readOnly: boolean,
): Promise<Finished | undefined> {
  return session.call(async (connection) => {
    const statements = await connection.extractStatements(sql).catch((error: unknown) => {
      throw extractError(error);
    });
    if (statements.count === 0) throw refusal(EMPTY_QUERY);
    // Like the other engines: one statement per query, so nothing runs before the one streamed.
    if (statements.count > 1) throw refusal('The query must contain exactly one SQL statement.');
    // DuckDB creates EXPORT DATABASE's directory while preparing it, before its type is known.
    if (readOnly && leadingKeyword(sql) === 'EXPORT') throw refusal(READ_ONLY_REFUSAL);
    const prepared = await statements.prepare(0);
    try {
      if (readOnly && WRITES_FILES.has(prepared.statementType)) throw refusal(READ_ONLY_REFUSAL);
      bindParameters(prepared, parameters);
      const query =
        prepared.statementType === StatementType.SELECT
          ? sql
          : prepared.statementType === StatementType.CALL
            ? callAsQuery(sql)
            : undefined;
      if (query !== undefined) {
        const spooled = await spool(session, connection, query, parameters, prepared);
        if (spooled) return spooled;
      }
      // interrupt() stops only a statement already running: an abort since the last await must not start one.
      session.throwIfAborted();
      // Streamed, not run(): a materialized result lives in plain memory, outside memory_limit. DuckDB
      // streams what it can (PRAGMA, DESCRIBE, SHOW… produce rows as they are read) and collects the
      // rest itself before the first row, as run() would; a sink (INSERT, COPY, DDL) has run to
      // completion, its errors included, when this resolves. batches() detects a fetch that failed.
      const result = await prepared.stream();
      // INSERT/UPDATE/DELETE (a row count) and DDL: no result set.
      if (result.returnType !== ResultReturnType.QUERY_RESULT) return undefined;
      return finished(result.columnNames(), result, undefined);
    } finally {
      prepared.destroySync();
    }
  });
}

/**
 * Runs the query as `CREATE TEMP TABLE … AS <query>` and opens a stream on that table, which lives
 * as long as the connection. The query itself is prepared (bound, checked) but never run. Returns
 * undefined when the wrapped statement does not prepare (e.g. DESCRIBE, SHOW, PRAGMA), before anything ran.
 * Visible to the query itself: a catalog query (duckdb_tables(), information_schema) lists the
 * temporary `qrun_result_…` table being filled, and current_query() returns the wrapped text.
 */
async function spool(
  session: DuckSession,
  connection: DuckDBConnection,
  sql: string,
  parameters: readonly ParameterValue[],
  query: DuckDBPreparedStatement,
): Promise<Finished | undefined> {
  const table = `qrun_result_${randomBytes(8).toString('hex')}`;
  let create: DuckDBPreparedStatement | undefined;
  try {
    // The line break keeps the query on lines of its own for DuckDB's error context (see userLines).
    const statements = await connection.extractStatements(`CREATE TEMP TABLE ${table} AS\n${sql}`);
    if (statements.count !== 1) return undefined;
    create = await statements.prepare(0);
    bindParameters(create, parameters);
  } catch {
    create?.destroySync();
    return undefined;
  }
  let rowCount: number | undefined;
  try {
    session.throwIfAborted();
    // CREATE TABLE … AS answers with one row, one column: the number of rows it inserted.
    const [[count] = []] = await (await create.run()).getRows();
    rowCount = typeof count === 'bigint' || typeof count === 'number' ? Number(count) : undefined;
  } catch (error) {
    throw userLines(error);
  } finally {
    create.destroySync();
  }
  // A table scan, whose only possible failure is reading spilled pages back; batches() checks the count.
  session.throwIfAborted();
  const result = await connection.stream(`FROM ${table}`);
  return finished(queryColumnNames(query, result), result, rowCount);
}

/**
 * The names the query gave its columns. The table's own are the same except that CREATE TABLE
 * renames duplicates (`a`, `a_1`); but a query whose types depend on its parameters is only
 * planned when it runs, so its prepared form knows no columns (one of type INVALID), and then the
 * table's names are the best there are.
 */
function queryColumnNames(query: DuckDBPreparedStatement, table: DuckDBResult): string[] {
  const count = query.columnCount;
  const known = Array.from({ length: count }, (_, i) => query.columnTypeId(i) !== DuckDBTypeId.INVALID);
  if (count !== table.columnCount || known.includes(false)) return table.columnNames();
  return Array.from({ length: count }, (_, i) => query.columnName(i));
}

/**
 * Reads a finished statement chunk by chunk (about 2048 rows each, so JS never holds more than about
 * one batch) and cuts the rows into batches of `size`.
 */
class ChunkReader {
  private chunkRows: DuckDBValue[][] = [];
  private at = 0;
  private read = 0;

  constructor(
    private readonly session: DuckSession,
    private readonly statement: Finished,
    private readonly size: number,
  ) {}

  async next(): Promise<RawBatch<CellValue[]>> {
    const { result, converters, rowCount } = this.statement;
    const batch: CellValue[][] = [];
    while (batch.length < this.size) {
      if (this.at >= this.chunkRows.length) {
        const chunk = await this.session.call(() => result.fetchChunk());
        if (!chunk || chunk.rowCount === 0) {
          // An empty chunk is also what a failed fetch returns (its result then turns INVALID): never end short.
          if (
            (rowCount !== undefined && this.read !== rowCount) ||
            result.returnType !== ResultReturnType.QUERY_RESULT
          ) {
            throw endedShort(this.read, rowCount);
          }
          return { rows: batch, done: true };
        }
        this.read += chunk.rowCount;
        this.chunkRows = chunk.getRows();
        this.at = 0;
      }
      while (this.at < this.chunkRows.length && batch.length < this.size) {
        const row = this.chunkRows[this.at++]!;
        batch.push(row.map((value, i) => (converters[i] ?? String)(value)));
      }
    }
    return { rows: batch, done: false };
  }
}

export async function streamDuckdb(
  config: DuckdbConfig,
  sql: string,
  parameters: readonly ParameterValue[],
  options: StreamOptions,
  context: ConnectorContext,
): Promise<QueryStream> {
  const target = checkedAtOpen(() => resolveTarget(config, context));
  throwIfAborted(options.signal);
  let opened: Lease;
  try {
    opened = await lease(target, options.signal);
  } catch (error) {
    throw duckdbError(error);
  }
  const session = new DuckSession(opened, options.signal);
  let statement: Finished | undefined;
  try {
    statement = await runStatement(session, sql, parameters, target.readOnly);
  } catch (error) {
    session.close();
    throw error;
  }
  if (!statement) {
    session.close();
    return { columns: [], rows: (async function* () {})() };
  }
  const reader = new ChunkReader(session, statement, batchRows(options.batchSize));
  return {
    columns: statement.columns,
    rows: rowBatches(options.signal, {
      read: () => reader.next(),
      decode: asIs,
      close: () => session.close(),
    }),
  };
}
