import type { Connector } from '../connector.js';
import { destinationForTest, validateNetworkConfig } from '../egress.js';
import { networkConfigFields } from '../network-config.js';
import {
  endMysqlConnection,
  openMysqlConnection,
  runSql,
  toMysqlError,
  type MysqlConfig,
} from './mysql-session.js';
import { streamMysql } from './mysql-stream.js';

const configFields = networkConfigFields({
  defaultPort: 3306,
  database: 'Default database (schema).',
  login: 'User',
});

/**
 * MySQL and MariaDB: one mysql2 connection per statement, rows streamed with socket back-pressure,
 * values mapped by mysql-values.ts, cancel via KILL QUERY.
 */
export const mysqlConnector: Connector = {
  type: 'mysql',
  name: 'MySQL / MariaDB',
  capabilities: { placeholders: 'question', serverCancel: true, fileBased: false },
  configFields,

  // The generic validation already checked types, required fields and defaults.
  validateConfig: validateNetworkConfig,

  async test(config, context) {
    const mysqlConfig = config as unknown as MysqlConfig;
    // Before any socket: a refusal is the caller's 400 host_not_allowed.
    const destination = await destinationForTest(mysqlConfig, context);
    try {
      const connection = await openMysqlConnection(mysqlConfig, destination);
      try {
        await runSql(connection, 'SELECT 1');
      } finally {
        await endMysqlConnection(connection);
      }
    } catch (err) {
      throw toMysqlError(err, mysqlConfig);
    }
  },

  stream: (config, sql, parameters, options, context) =>
    streamMysql(
      config as unknown as MysqlConfig,
      sql,
      parameters,
      options.signal,
      options.batchSize,
      context,
    ),
};
