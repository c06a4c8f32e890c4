import type { Connector } from '../connector.js';
import { destinationForTest, validateNetworkConfig } from '../egress.js';
import { networkConfigFields } from '../network-config.js';
import { endPgClient, openPgClient, toPgError, type PgConfig } from './postgres-session.js';
import { streamPostgres } from './postgres-stream.js';

const configFields = networkConfigFields({
  defaultPort: 5432,
  database: 'Database to connect to.',
  login: 'Role',
});

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
  validateConfig: validateNetworkConfig,

  async test(config, context) {
    const pgConfig = config as unknown as PgConfig;
    // Before any socket: a refusal is the caller's 400 host_not_allowed.
    const destination = await destinationForTest(pgConfig, context);
    try {
      const client = await openPgClient(pgConfig, destination);
      try {
        await client.query('SELECT 1');
      } finally {
        await endPgClient(client);
      }
    } catch (err) {
      throw toPgError(err, pgConfig);
    }
  },

  stream: (config, sql, parameters, options, context) =>
    streamPostgres(
      config as unknown as PgConfig,
      sql,
      parameters,
      options.signal,
      options.batchSize,
      context,
    ),
};
