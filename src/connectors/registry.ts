import type { TObject } from 'typebox';
import type { Connector } from './connector.js';
import { duckdbConnector } from './duckdb/duckdb-connector.js';
import { mysqlConnector } from './mysql/mysql-connector.js';
import { postgresConnector } from './postgres/postgres-connector.js';
import { sqliteConnector } from './sqlite/sqlite-connector.js';

/**
 * Every engine qrun speaks, in the order the API lists them.
 *
 * Adding an engine (`<engine>` below is its folder name, e.g. `clickhouse`):
 * 1. Create `src/connectors/<engine>/` with the same files as the others:
 *    - `<engine>-connector.ts`: the configuration schema (`configSchema({...})` of `field.*`, or
 *      `networkConfigSchema` / `fileConfigSchema`), `type <Engine>Config = Static<typeof schema>`, an
 *      `Engine<<Engine>Config>` (type id, name, capabilities, checkConfig, test, stream), and
 *      `export const <engine>Connector = defineConnector(schema, engine)`; a header comment listing
 *      the folder's files. It imports no driver: `test` and `stream` load `<engine>-session.ts` and
 *      `<engine>-stream.ts` with `await import()`, so the driver loads at first use, never at start-up.
 *    - `<engine>-session.ts`: open a connection (network engines dial the CheckedDestination from
 *      `destinationForQuery`/`destinationForTest` in network.ts, never the host name), the session
 *      settings that make values predictable (UTC, text forms), cancel on the server; usually a
 *      `StatementSession` subclass (support.ts) so every exit path closes exactly once.
 *    - `<engine>-stream.ts`: one statement → `{ columns, rows: rowBatches(signal, source, first) }`
 *      with a server-side cursor or the engine's equivalent, `batchRows(options.batchSize)` rows at a
 *      time; nothing may hold more than about one batch.
 *    - `<engine>-values.ts`: column type → type name and a decoder to CellValue, per CONTRACT.md's
 *      value table (exact integers and decimals, RFC 3339 times, bytes, JsonText for JSON). Build
 *      decoders once per column; no per-row type dispatch.
 *    - `<engine>-errors.ts`: driver errors → `toDatabaseError(err, { message, code, secrets, signal })`
 *      (support.ts): the database's message with secrets scrubbed, SQLSTATE or the driver's code.
 *    Reuse support.ts (describeError, raceAbort, withTimeout, testByQuery, rowBatches) rather than
 *    writing them again; `duplicates --change` should list nothing new in src/connectors.
 * 2. Add the connector to CONNECTORS below (one line; the API lists types in this order).
 * 3. Add `test/helpers/<engine>-fixture.ts` (an EngineFixture: setup/teardown of its own database or
 *    file, badCredentials if it has any, `sql.series/slow/twoParameters`, `runningStatements` if it has
 *    a server, and `valueCases`: its side of the value table, each with the exact CellValues and type
 *    names), and list it in test/helpers/engines.ts.
 * 4. Run the shared suites, which then cover the new engine: `npx vitest run
 *    test/integration/connectors.test.ts test/integration/query-engines.test.ts` (streaming, values,
 *    parameters in the declared placeholder style, syntax errors, abort on the server, early stop,
 *    configuration validation; then the same end to end over HTTP, pages, cancel, timeout, max_rows).
 *    query-engines.test.ts also needs the engine's `CASES` entry (an EngineCase: reading the same
 *    data with the raw driver, its big table, a value row as response text, statements without
 *    rows, parameters, a mid-stream error).
 * 5. Document the engine's values in CONTRACT.md's value table and its configuration in the README.
 */
const CONNECTORS: readonly Connector[] = [
  postgresConnector,
  mysqlConnector,
  sqliteConnector,
  duckdbConnector,
];

const BY_TYPE: ReadonlyMap<string, Connector> = new Map(CONNECTORS.map((c) => [c.type, c]));

/** The connector for an API type id (`postgresql`, `mysql`, `sqlite`, `duckdb`), or undefined. */
export function getConnector(type: string): Connector | undefined {
  return BY_TYPE.get(type);
}

export function listConnectors(): Connector[] {
  return [...CONNECTORS];
}

/**
 * Each type's configuration as JSON Schema, as a client writes it (fields with a default are optional),
 * for the OpenAPI document: `{ postgresql: {...}, mysql: {...}, … }`.
 */
export function connectionConfigSchemas(): Record<string, TObject> {
  return Object.fromEntries(CONNECTORS.map((c) => [c.type, c.configSchema]));
}
