import type { ConfigField, Connector } from '../connector.js';
import {
  endMysqlConnection,
  openMysqlConnection,
  runSql,
  toMysqlError,
  type MysqlConfig,
} from './mysql-session.js';
import { streamMysql } from './mysql-stream.js';

const configFields: readonly ConfigField[] = [
  {
    name: 'hostname',
    type: 'string',
    required: true,
    secret: false,
    description: 'Server host name or IP address.',
  },
  {
    name: 'port',
    type: 'integer',
    required: false,
    secret: false,
    default: 3306,
    description: 'Server TCP port.',
  },
  {
    name: 'database',
    type: 'string',
    required: true,
    secret: false,
    description: 'Default database (schema).',
  },
  { name: 'username', type: 'string', required: true, secret: false, description: 'User to log in as.' },
  { name: 'password', type: 'string', required: false, secret: true, description: 'Password of the user.' },
  {
    name: 'ssl',
    type: 'boolean',
    required: false,
    secret: false,
    default: false,
    description: 'Connect over TLS and verify the server certificate.',
  },
];

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
  validateConfig: (config) => config,

  async test(config) {
    const mysqlConfig = config as unknown as MysqlConfig;
    try {
      const connection = await openMysqlConnection(mysqlConfig);
      try {
        await runSql(connection, 'SELECT 1');
      } finally {
        await endMysqlConnection(connection);
      }
    } catch (err) {
      throw toMysqlError(err, mysqlConfig);
    }
  },

  stream: (config, sql, parameters, options) =>
    streamMysql(config as unknown as MysqlConfig, sql, parameters, options.signal, options.batchSize),
};
