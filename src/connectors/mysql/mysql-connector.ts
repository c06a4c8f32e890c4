/**
 * MySQL and MariaDB: one mysql2 connection per statement, rows streamed with socket back-pressure,
 * values mapped by column type (text-protocol rows decoded from the packets' bytes), cancel via KILL QUERY.
 *
 * - mysql-connector.ts  the Connector: configuration schema, capabilities, test, stream entry
 * - mysql-session.ts    a connection on a checked socket, session settings, KILL QUERY, close
 * - mysql-stream.ts     one statement → batches of rows (driver events, pause/resume)
 * - mysql-rows.ts       text-protocol row packets → CellValues, without mysql2's row parser
 * - mysql-values.ts     column definitions → type names, and mysql2's binary-protocol values → CellValues
 * - mysql-errors.ts     driver errors → DatabaseError (SQLSTATE, secrets scrubbed) / QueryAbortedError
 */
import { Type, type Static } from 'typebox';
import type { EgressTarget } from '../../net/egress-policy.js';
import { configSchema, defineConnector } from '../config-schema.js';
import type { Engine } from '../connector.js';
import { checkNetworkConfig, networkField, testConnection } from '../network.js';
import { toMysqlError } from './mysql-errors.js';

/**
 * Polytomic's `mysql` fields (`dbname`, `account`, `passwd`); qrun's earlier names (`database`, `username`,
 * `password`, PostgreSQL's) are accepted as aliases on input, and stored and answered under Polytomic's.
 * As in Polytomic, the database is optional (unqualified table names then fail until the SQL says `USE`).
 */
export const mysqlConfigSchema = configSchema({
  hostname: networkField.hostname(),
  port: networkField.port(3306),
  dbname: Type.Optional(networkField.database('Default database (schema).', ['database'])),
  account: networkField.login('User', ['username']),
  passwd: networkField.password('User', ['password']),
  ssl: networkField.ssl(),
});

export type MysqlConfig = Static<typeof mysqlConfigSchema>;

/** Where a connection goes, as the egress policy checks it (no database name: none to compare). */
export function mysqlTarget(config: MysqlConfig): EgressTarget {
  return { hostname: config.hostname, port: config.port, database: config.dbname ?? '' };
}

const mysql: Engine<MysqlConfig> = {
  type: 'mysql',
  name: 'MySQL / MariaDB',
  capabilities: { placeholders: 'question', fileBased: false },

  checkConfig: checkNetworkConfig,
  target: mysqlTarget,

  // The driver (mysql2) loads at the first test or query, not at start-up (docs/ARCHITECTURE.md).
  async test(config, context) {
    const { endMysqlConnection, openMysqlConnection, runSql } = await import('./mysql-session.js');
    return testConnection(mysqlTarget(config), context, {
      open: (destination) => openMysqlConnection(config, destination),
      query: (connection) => runSql(connection, 'SELECT 1'),
      end: endMysqlConnection,
      toError: (err) => toMysqlError(err, config),
    });
  },

  stream: async (config, sql, parameters, options, context) =>
    (await import('./mysql-stream.js')).streamMysql(config, sql, parameters, options, context),
};

export const mysqlConnector = defineConnector(mysqlConfigSchema, mysql);
