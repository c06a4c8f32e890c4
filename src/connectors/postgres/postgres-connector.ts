import type { ConfigField, Connector } from '../connector.js';
import { endPgClient, openPgClient, toPgError, type PgConfig } from './postgres-session.js';
import { streamPostgres } from './postgres-stream.js';

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
    default: 5432,
    description: 'Server TCP port.',
  },
  { name: 'database', type: 'string', required: true, secret: false, description: 'Database to connect to.' },
  { name: 'username', type: 'string', required: true, secret: false, description: 'Role to log in as.' },
  { name: 'password', type: 'string', required: false, secret: true, description: 'Password of the role.' },
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
 * PostgreSQL (and wire-compatible servers): one pg Client per statement, rows from a pg-cursor,
 * values as exact text mapped by postgres-values.ts, cancel via pg_cancel_backend.
 */
export const postgresConnector: Connector = {
  type: 'postgresql',
  name: 'PostgreSQL',
  capabilities: { placeholders: 'dollar', serverCancel: true, fileBased: false },
  configFields,

  // The generic validation already checked types, required fields and defaults.
  validateConfig: (config) => config,

  async test(config) {
    const pgConfig = config as unknown as PgConfig;
    try {
      const client = await openPgClient(pgConfig);
      try {
        await client.query('SELECT 1');
      } finally {
        await endPgClient(client);
      }
    } catch (err) {
      throw toPgError(err, pgConfig);
    }
  },

  stream: (config, sql, parameters, options) =>
    streamPostgres(config as unknown as PgConfig, sql, parameters, options.signal, options.batchSize),
};
