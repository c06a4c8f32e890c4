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
import type { Static } from 'typebox';
import { defineConnector } from '../config-schema.js';
import type { Engine } from '../connector.js';
import { checkNetworkConfig, networkConfigSchema, testConnection } from '../network.js';
import { toMysqlError } from './mysql-errors.js';
import { endMysqlConnection, openMysqlConnection, runSql } from './mysql-session.js';
import { streamMysql } from './mysql-stream.js';

export const mysqlConfigSchema = networkConfigSchema({
  defaultPort: 3306,
  database: 'Default database (schema).',
  login: 'User',
});

export type MysqlConfig = Static<typeof mysqlConfigSchema>;

const mysql: Engine<MysqlConfig> = {
  type: 'mysql',
  name: 'MySQL / MariaDB',
  capabilities: { placeholders: 'question', fileBased: false },

  checkConfig: checkNetworkConfig,

  test: (config, context) =>
    testConnection(config, context, {
      open: (destination) => openMysqlConnection(config, destination),
      query: (connection) => runSql(connection, 'SELECT 1'),
      end: endMysqlConnection,
      toError: (err) => toMysqlError(err, config),
    }),

  stream: streamMysql,
};

export const mysqlConnector = defineConnector(mysqlConfigSchema, mysql);
