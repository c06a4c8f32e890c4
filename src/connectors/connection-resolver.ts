import { join } from 'node:path';
import { badRequest } from '../core/errors.js';
import type { SecretBox } from '../crypto/secret-box.js';
import type { EgressPolicy } from '../net/egress-policy.js';
import type { ConnectionRow } from '../store/repositories/connections.js';
import type { Connector, ConnectorContext, DuckDBLimits } from './connector.js';
import { WarmSessions, type WarmSessionSlot, type WarmSessionsOptions } from './warm-sessions.js';

/** The engines qrun speaks (src/connectors/registry.ts), looked up by API type id. */
export interface ConnectorLookup {
  get(type: string): Connector | undefined;
  list(): Connector[];
}

/** A connection ready to run queries on: its connector and the decrypted configuration. */
export interface ResolvedConnection {
  id: string;
  organizationId: string;
  connector: Connector;
  config: Record<string, unknown>;
  /** Secret values, for scrubbing database messages. */
  secrets: string[];
}

export interface ConnectionResolverOptions {
  /** QRUN_FILE_ROOT: each organization's files live in `<fileRoot>/<organization id>/`. */
  fileRoot: string;
  /** Operator limits for DuckDB instances. */
  duckdb?: DuckDBLimits;
  /** Warm sessions kept per stored connection (QRUN_CONNECTION_CONCURRENCY) and for how long. Default: none. */
  warmSessions?: WarmSessionsOptions;
}

/**
 * What both the connection API and the query runner need to turn a stored connection into something
 * a connector can run: the connector for a type, secrets sealed and opened, and the context (files,
 * network) an organization's connections may reach. It sits below both, so neither imports the other.
 */
export class ConnectionResolver {
  /** Sessions of finished statements, kept for the next statement on the same stored connection. */
  private readonly warm: WarmSessions;

  constructor(
    private readonly connectors: ConnectorLookup,
    private readonly secrets: SecretBox,
    /** Every network destination a connector dials passes it (QRUN_EGRESS_ALLOW / QRUN_EGRESS_DENY). */
    private readonly egress: EgressPolicy,
    private readonly options: ConnectionResolverOptions,
  ) {
    this.warm = new WarmSessions(options.warmSessions ?? { limit: 0, idleMs: 0 });
  }

  listConnectors(): Connector[] {
    return this.connectors.list();
  }

  /** The connector of an API type id; 400 invalid_connection_type naming the known ones otherwise. */
  connector(type: unknown): Connector {
    const connector = typeof type === 'string' ? this.connectors.get(type) : undefined;
    if (!connector) {
      const known = this.connectors
        .list()
        .map((c) => c.type)
        .join(', ');
      throw badRequest(
        'invalid_connection_type',
        `Unknown connection type "${String(type)}"; use one of: ${known}.`,
        {
          field: 'type',
        },
      );
    }
    return connector;
  }

  /**
   * What connectors may reach for one organization: its own file directory (and nothing else), and
   * the network destinations the egress policy allows.
   */
  contextFor(organizationId: string): ConnectorContext {
    return {
      fileDir: join(this.options.fileRoot, organizationId),
      egress: this.egress,
      duckdb: this.options.duckdb,
    };
  }

  /**
   * Where statements on one stored connection take and give back warm sessions. The owner names the
   * organization as well as the connection: a session never crosses from one organization to another.
   */
  warmSlot(connection: Pick<ResolvedConnection, 'id' | 'organizationId'>): WarmSessionSlot {
    return { pool: this.warm, owner: `${connection.organizationId}/${connection.id}` };
  }

  /** Ends the warm sessions of a stored connection that was changed or deleted (in this process). */
  forgetSessions(organizationId: string, connectionId: string): void {
    this.warm.forget(`${organizationId}/${connectionId}`);
  }

  /** Ends every warm session (shutdown). */
  close(): Promise<void> {
    return this.warm.close();
  }

  /** The configuration as stored: every secret field sealed. */
  seal(connector: Connector, config: Record<string, unknown>): Record<string, unknown> {
    return mapSecrets(connector, config, (v) => this.secrets.seal(v));
  }

  /**
   * The stored configuration with its secrets opened, under the fields' current names (one stored under
   * names that are aliases since, MySQL's `password` before `passwd`, is renamed first).
   */
  open(connector: Connector, stored: Record<string, unknown>): Record<string, unknown> {
    return mapSecrets(connector, connector.canonicalNames(stored), (v) => this.secrets.open(v));
  }

  /** A stored connection, opened for running queries. */
  resolve(row: ConnectionRow): ResolvedConnection {
    const connector = this.connector(row.type);
    const config = this.open(connector, JSON.parse(row.configuration) as Record<string, unknown>);
    return {
      id: row.id,
      organizationId: row.organization_id,
      connector,
      config,
      secrets: secretValues(connector, config),
    };
  }
}

/** A copy of the configuration with `change` applied to every secret field that holds a string. */
function mapSecrets(
  connector: Connector,
  config: Record<string, unknown>,
  change: (value: string) => string,
): Record<string, unknown> {
  const out = { ...config };
  for (const f of connector.configFields) {
    const v = out[f.name];
    if (f.secret && typeof v === 'string') out[f.name] = change(v);
  }
  return out;
}

/** The values of a configuration's secret fields (to scrub them from database messages). */
export function secretValues(connector: Connector, config: Record<string, unknown>): string[] {
  return connector.configFields
    .filter((f) => f.secret && typeof config[f.name] === 'string')
    .map((f) => config[f.name] as string);
}
