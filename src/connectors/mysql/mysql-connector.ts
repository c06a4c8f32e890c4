/**
 * MySQL and MariaDB: one mysql2 connection per statement, rows streamed with socket back-pressure,
 * values mapped by column type, cancel via KILL QUERY.
 *
 * - mysql-connector.ts  the Connector: configuration schema, capabilities, test, stream entry
 * - mysql-session.ts    a connection on a checked socket, session settings, KILL QUERY, close
 * - mysql-stream.ts     one statement → batches of rows (driver events, pause/resume)
 * - mysql-values.ts     column definitions → type names and CellValue decoders
 * - mysql-errors.ts     driver errors → DatabaseError (SQLSTATE, secrets scrubbed) / QueryAbortedError
 */
import { Type, type Static } from 'typebox';
import { configSchema, defineConnector } from '../config-schema.js';
import type { Engine } from '../connector.js';
import { checkNetworkConfig, networkField, testConnection } from '../network.js';
import { toMysqlError } from './mysql-errors.js';
import { endMysqlConnection, mysqlTarget, openMysqlConnection, runSql } from './mysql-session.js';
import { streamMysql } from './mysql-stream.js';

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

const mysql: Engine<MysqlConfig> = {
  type: 'mysql',
  name: 'MySQL / MariaDB',
  capabilities: { placeholders: 'question', fileBased: false },

  checkConfig: checkNetworkConfig,
  target: mysqlTarget,

  test: (config, context) =>
    testConnection(mysqlTarget(config), context, {
      open: (destination) => openMysqlConnection(config, destination),
      query: (connection) => runSql(connection, 'SELECT 1'),
      end: endMysqlConnection,
      toError: (err) => toMysqlError(err, config),
    }),

  stream: streamMysql,
};

export const mysqlConnector = defineConnector(mysqlConfigSchema, mysql);
