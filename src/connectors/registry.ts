import type { Connector } from './connector.js';
import { duckdbConnector } from './duckdb/duckdb-connector.js';
import { mysqlConnector } from './mysql/mysql-connector.js';
import { postgresConnector } from './postgres/postgres-connector.js';
import { sqliteConnector } from './sqlite/sqlite-connector.js';

/** Every engine qrun speaks, in the order the API lists them. Adding an engine is one line here. */
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
