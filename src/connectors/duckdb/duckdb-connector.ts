/**
 * DuckDB: one open instance per database file (or a private one for `:memory:`), locked down to the
 * organization's directory, one connection per statement; a query is spooled into a temporary table
 * and read from there (docs/ARCHITECTURE.md: DuckDB results are spooled, not streamed).
 *
 * - duckdb-connector.ts  the Connector: configuration schema, capabilities, test, stream entry
 * - duckdb-session.ts    the instance cache, limits and lock-down; a statement's connection, interrupt
 * - duckdb-stream.ts     one statement → batches of rows (spooling, CALL as FROM, read-only refusals)
 * - duckdb-values.ts     DuckDB types → type names and CellValue converters
 * - duckdb-errors.ts     DuckDB errors → DatabaseError (driver prefixes off, line numbers of the user's SQL)
 */
import type { Static } from 'typebox';
import { defineConnector } from '../config-schema.js';
import type { Engine } from '../connector.js';
import { fileConfigSchema, resolveUnderRoot } from '../file-path.js';
import { testByQuery } from '../support.js';

/** How long `test()` may take (opening a file waits while another stream has it open the other way). */
const TEST_TIMEOUT_MS = 30_000;

export const duckdbConfigSchema = fileConfigSchema(
  'Path of an existing DuckDB database file, relative to the organization’s file directory on the server ($QRUN_FILE_ROOT/<organization id>); absolute paths, `..` and symbolic links are refused. `:memory:` opens a new, empty in-memory database for each query. SQL reaches files in that directory only.',
);

export type DuckdbConfig = Static<typeof duckdbConfigSchema>;

export const MEMORY = ':memory:';

/** Whether the configuration opens a new, private in-memory database rather than a file. */
export function isMemory(config: DuckdbConfig): boolean {
  return config.path.trim() === MEMORY;
}

/**
 * The driver (@duckdb/node-api, a native module of some 30 MB) loads at the first test or query, not
 * at start-up (docs/ARCHITECTURE.md).
 */
const streamDuckdb: Engine<DuckdbConfig>['stream'] = async (config, sql, parameters, options, context) =>
  (await import('./duckdb-stream.js')).streamDuckdb(config, sql, parameters, options, context);

const duckdb: Engine<DuckdbConfig> = {
  type: 'duckdb',
  name: 'DuckDB',
  // DuckDB accepts both `?` and `$1`; `?` matches SQLite's.
  capabilities: { placeholders: 'question', fileBased: true },

  checkConfig(config, context) {
    // Refuses a path that does not lead to a file in the organization's directory. The path is kept
    // as the client gave it and resolved again at every open.
    if (!isMemory(config)) resolveUnderRoot(config.path, context.fileDir, 'path');
  },

  test: (config, context) =>
    testByQuery(
      (options) => streamDuckdb(config, 'SELECT 1', [], options, context),
      TEST_TIMEOUT_MS,
      'Opening the DuckDB database timed out.',
    ),

  stream: streamDuckdb,
};

export const duckdbConnector = defineConnector(duckdbConfigSchema, duckdb);
