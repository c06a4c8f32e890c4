/**
 * PostgreSQL (and wire-compatible servers): one pg Client per statement, rows read as COPY's text
 * output where the statement allows it and from a pg-cursor otherwise, values as exact text mapped by
 * type, cancel via pg_cancel_backend.
 *
 * - postgres-connector.ts  the Connector: configuration schema, capabilities, test, stream entry
 * - postgres-session.ts    a client on a checked socket, session settings, side connections, cancel
 * - postgres-stream.ts     one statement → batches of rows: chooses COPY or the cursor (a user's COPY refused)
 * - postgres-copy.ts       the COPY path: which statements, Describe, COPY text → raw values
 * - postgres-values.ts     column types (built-in table, pg_type lookup) and text → CellValue, arrays
 * - postgres-errors.ts     driver errors → DatabaseError (SQLSTATE, secrets scrubbed) / QueryAbortedError
 */
import type { Static } from 'typebox';
import type { EgressTarget } from '../../net/egress-policy.js';
import { configSchema, defineConnector } from '../config-schema.js';
import type { Engine } from '../connector.js';
import { checkNetworkConfig, networkField, testConnection } from '../network.js';
import { toPgError } from './postgres-errors.js';

/** Polytomic's `postgresql` fields, under the same names. */
export const pgConfigSchema = configSchema({
  hostname: networkField.hostname(),
  port: networkField.port(5432),
  database: networkField.database('Database to connect to.'),
  username: networkField.login('Role'),
  password: networkField.password('Role'),
  ssl: networkField.ssl(),
});

export type PgConfig = Static<typeof pgConfigSchema>;

/** Where a connection goes, as the egress policy checks it. */
export function pgTarget(config: PgConfig): EgressTarget {
  return { hostname: config.hostname, port: config.port, database: config.database };
}

const postgres: Engine<PgConfig> = {
  type: 'postgresql',
  name: 'PostgreSQL',
  capabilities: { placeholders: 'dollar', fileBased: false },

  checkConfig: checkNetworkConfig,
  target: pgTarget,

  // The driver (pg, pg-cursor) loads at the first test or query, not at start-up (docs/ARCHITECTURE.md).
  async test(config, context) {
    const { endPgClient, openPgClient } = await import('./postgres-session.js');
    return testConnection(pgTarget(config), context, {
      open: (destination) => openPgClient(config, destination),
      query: (client) => client.query('SELECT 1'),
      end: endPgClient,
      toError: (err) => toPgError(err, config),
    });
  },

  stream: async (config, sql, parameters, options, context) =>
    (await import('./postgres-stream.js')).streamPostgres(config, sql, parameters, options, context),
};

export const postgresConnector = defineConnector(pgConfigSchema, postgres);
