import { join } from 'node:path';
import type { Principal } from '../auth/principal.js';
import { AppError, badRequest, forbidden, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { nowIso, toWireTime } from '../core/time.js';
import {
  SECRET_PLACEHOLDER,
  maskSecrets,
  scrubMessage,
  validateConfigFields,
} from '../connectors/config-fields.js';
import {
  DatabaseError,
  type Connector,
  type ConnectorContext,
  type DuckDBLimits,
} from '../connectors/connector.js';
import type { SecretBox } from '../crypto/secret-box.js';
import { HostLookupError, type EgressPolicy } from '../net/egress-policy.js';
import type { ConnectionRow, ConnectionsRepository } from '../store/repositories/connections.js';
import { checkName } from './validation.js';

export type ConnectorLookup = {
  get(type: string): Connector | undefined;
  list(): Connector[];
};

export interface ConnectionView {
  id: string;
  name: string;
  type: { id: string; name: string };
  configuration: Record<string, unknown>;
  organization_id: string;
  status: string;
  status_error?: string;
  created_at: string;
  updated_at: string;
}

export interface ConnectionTypeView {
  id: string;
  name: string;
  fields: {
    name: string;
    type: string;
    required: boolean;
    secret: boolean;
    default?: string | number | boolean;
    description: string;
  }[];
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

export const CONNECTION_STATUS = Object.freeze({ healthy: 'healthy', untested: 'untested' });

const TEST_TIMEOUT_MS = 20_000;
/** Default of QRUN_MAX_CONNECTION_TESTS. */
const DEFAULT_MAX_TESTS = 4;

/** Stored database connections: validation, secrets sealed at rest, and the connection test. */
export class ConnectionService {
  /** Connector tests running now in this process (see runTest). */
  private testsRunning = 0;

  constructor(
    private readonly repo: ConnectionsRepository,
    private readonly connectors: ConnectorLookup,
    private readonly secrets: SecretBox,
    /** maxTests: connector tests at once in this process (QRUN_MAX_CONNECTION_TESTS). */
    private readonly options: { fileRoot: string; maxTests?: number; duckdb?: DuckDBLimits },
    /** Every network destination a connector dials passes it (QRUN_EGRESS_ALLOW / QRUN_EGRESS_DENY). */
    private readonly egress: EgressPolicy,
  ) {}

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

  listTypes(): ConnectionTypeView[] {
    return this.connectors.list().map((c) => ({
      id: c.type,
      name: c.name,
      fields: c.configFields.map((f) => ({ ...f })),
    }));
  }

  async list(p: Principal): Promise<ConnectionView[]> {
    const orgId = requireMember(p);
    return (await this.repo.listByOrganization(orgId)).map((row) => this.view(row));
  }

  async get(p: Principal, id: string): Promise<ConnectionView> {
    return this.view(await this.load(p, id));
  }

  async create(
    p: Principal,
    input: { name: string; type: string; configuration: unknown; validate?: boolean },
  ): Promise<ConnectionView> {
    const orgId = requireManager(p);
    const connector = this.connector(input.type);
    const name = checkName(input.name);
    const context = this.contextFor(orgId);
    const config = this.validate(connector, input.configuration, undefined, context);
    await this.checkEgress(connector, config, context);
    const status =
      input.validate === false ? CONNECTION_STATUS.untested : await this.runTest(connector, config, context);
    const now = nowIso();
    const row: ConnectionRow = {
      id: newId(),
      organization_id: orgId,
      name,
      type: connector.type,
      configuration: JSON.stringify(this.seal(connector, config)),
      status,
      status_error: null,
      created_at: now,
      updated_at: now,
    };
    await this.repo.insert(row);
    return this.view(row);
  }

  /**
   * Replaces the name and/or configuration. A secret sent back as the placeholder keeps the stored one,
   * so a client can round-trip what GET returned, but only while the destination stays the same.
   */
  async update(
    p: Principal,
    id: string,
    input: { name?: string; type?: string; configuration?: unknown; validate?: boolean },
  ): Promise<ConnectionView> {
    requireManager(p);
    const row = await this.load(p, id);
    const connector = this.connector(row.type);
    if (input.type !== undefined && input.type !== row.type) {
      throw badRequest('invalid_connection_type', `A connection's type cannot change (it is ${row.type}).`, {
        field: 'type',
      });
    }
    const changes: Partial<ConnectionRow> = { updated_at: nowIso() };
    if (input.name !== undefined) changes.name = checkName(input.name);
    if (input.configuration !== undefined) {
      const stored = this.open(connector, JSON.parse(row.configuration) as Record<string, unknown>);
      const context = this.contextFor(row.organization_id);
      const config = this.validate(connector, input.configuration, stored, context);
      await this.checkEgress(connector, config, context);
      changes.status =
        input.validate === false
          ? CONNECTION_STATUS.untested
          : await this.runTest(connector, config, context);
      changes.status_error = null;
      changes.configuration = JSON.stringify(this.seal(connector, config));
    }
    await this.repo.update(id, changes);
    return this.view({ ...row, ...changes });
  }

  async delete(p: Principal, id: string): Promise<void> {
    const orgId = requireManager(p);
    if (!(await this.repo.delete(orgId, id))) throw notFound('connection', id);
  }

  /** Checks a configuration without saving anything. */
  async test(p: Principal, input: { type: string; configuration: unknown }): Promise<{ status: string }> {
    const context = this.contextFor(requireMember(p));
    const connector = this.connector(input.type);
    const config = this.validate(connector, input.configuration, undefined, context);
    await this.checkEgress(connector, config, context);
    return { status: await this.runTest(connector, config, context) };
  }

  /** For the query runner: the caller's connection with its secrets opened. 404 for another organization's. */
  async resolve(p: Principal, id: string): Promise<ResolvedConnection> {
    const row = await this.load(p, id);
    return this.resolveRow(row);
  }

  resolveRow(row: ConnectionRow): ResolvedConnection {
    const connector = this.connector(row.type);
    const config = this.open(connector, JSON.parse(row.configuration) as Record<string, unknown>);
    const secrets = connector.configFields
      .filter((f) => f.secret && typeof config[f.name] === 'string')
      .map((f) => config[f.name] as string);
    return { id: row.id, organizationId: row.organization_id, connector, config, secrets };
  }

  // ---- helpers ----

  private async load(p: Principal, id: string): Promise<ConnectionRow> {
    const orgId = requireMember(p);
    const row = await this.repo.find(orgId, id);
    if (!row) throw notFound('connection', id);
    return row;
  }

  private connector(type: unknown): Connector {
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

  private validate(
    connector: Connector,
    input: unknown,
    stored: Record<string, unknown> | undefined,
    context: ConnectorContext,
  ): Record<string, unknown> {
    const fields = validateConfigFields(connector.configFields, input);
    const config = connector.validateConfig(keepStoredSecrets(connector, fields, stored), context);
    return config;
  }

  /**
   * The egress policy's answer before anything is saved or tested, also with `validate: false`: a
   * refused destination is 400 host_not_allowed and opens no socket. A name that does not resolve
   * (yet, or not from this process) is left to the connection test and to every later connect, which
   * check again.
   */
  private async checkEgress(
    connector: Connector,
    config: Record<string, unknown>,
    context: ConnectorContext,
  ): Promise<void> {
    const { hostname, port, database } = config;
    if (connector.capabilities.fileBased || typeof hostname !== 'string') return;
    try {
      await context.egress.check({
        hostname,
        port: typeof port === 'number' ? port : 0,
        database: typeof database === 'string' ? database : '',
      });
    } catch (err) {
      if (!(err instanceof HostLookupError)) throw err;
    }
  }

  /**
   * Runs the connector's test in one of a few per-process slots: a test may fork a SQLite process, open a
   * DuckDB instance or hold a socket for seconds, so a burst of them must not exhaust the machine. A test
   * beyond the limit is refused at once (429), not queued: the caller retries, and nothing waits in memory.
   */
  private async runTest(
    connector: Connector,
    config: Record<string, unknown>,
    context: ConnectorContext,
  ): Promise<string> {
    const limit = this.options.maxTests ?? DEFAULT_MAX_TESTS;
    if (this.testsRunning >= limit) {
      throw new AppError(
        429,
        'too_many_connection_tests',
        `This server is already running its limit of ${limit} connection tests at once; try again in a second.`,
        { headers: { 'retry-after': '1' }, metadata: { limit } },
      );
    }
    this.testsRunning++;
    try {
      return await this.runTestInSlot(connector, config, context);
    } finally {
      this.testsRunning--;
    }
  }

  private async runTestInSlot(
    connector: Connector,
    config: Record<string, unknown>,
    context: ConnectorContext,
  ): Promise<string> {
    const secrets = connector.configFields
      .filter((f) => f.secret && typeof config[f.name] === 'string')
      .map((f) => config[f.name] as string);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        connector.test(config, context),
        new Promise((_, reject) => {
          timer = setTimeout(
            () =>
              reject(new DatabaseError(`No answer from the database within ${TEST_TIMEOUT_MS / 1000} s.`)),
            TEST_TIMEOUT_MS,
          );
        }),
      ]);
      return CONNECTION_STATUS.healthy;
    } catch (err) {
      if (err instanceof AppError) throw err;
      const message = scrubMessage(err instanceof Error ? err.message : String(err), secrets);
      throw new AppError(400, 'connection_invalid', `Could not connect: ${message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  private seal(connector: Connector, config: Record<string, unknown>): Record<string, unknown> {
    const out = { ...config };
    for (const f of connector.configFields) {
      const v = out[f.name];
      if (f.secret && typeof v === 'string') out[f.name] = this.secrets.seal(v);
    }
    return out;
  }

  private open(connector: Connector, stored: Record<string, unknown>): Record<string, unknown> {
    const out = { ...stored };
    for (const f of connector.configFields) {
      const v = out[f.name];
      if (f.secret && typeof v === 'string') out[f.name] = this.secrets.open(v);
    }
    return out;
  }

  private view(row: ConnectionRow): ConnectionView {
    const connector = this.connector(row.type);
    const view: ConnectionView = {
      id: row.id,
      name: row.name,
      type: { id: connector.type, name: connector.name },
      configuration: maskSecrets(
        connector.configFields,
        JSON.parse(row.configuration) as Record<string, unknown>,
      ),
      organization_id: row.organization_id,
      status: row.status,
      created_at: toWireTime(row.created_at),
      updated_at: toWireTime(row.updated_at),
    };
    if (row.status_error) view.status_error = row.status_error;
    return view;
  }
}

/** Connections belong to an organization: its users and its organization key. The partner has none. */
function requireMember(p: Principal): string {
  if (p.kind === 'partner') {
    throw forbidden('The partner key manages organizations; use a user or organization key for connections.');
  }
  return p.organizationId;
}

/**
 * Changing connections is for those who manage the organization: its admins and its organization key.
 * Users may list, read, test and query them. (Otherwise any member could point a connection, with its
 * stored password, at a server of their own.)
 */
function requireManager(p: Principal): string {
  const orgId = requireMember(p);
  if (p.kind === 'user' && p.role !== 'admin') {
    throw forbidden(
      'Only an organization admin or the organization key may create, change or delete connections; your role is "user".',
    );
  }
  return orgId;
}

/**
 * Replaces each secret sent as the placeholder by the stored one, but only while the destination is
 * unchanged: a kept password must never travel to a host, port, database, user or TLS setting it was
 * not given for. Decided before anything connects.
 */
function keepStoredSecrets<T extends Record<string, unknown>>(
  connector: Connector,
  config: T,
  stored: Record<string, unknown> | undefined,
): T {
  const placeholders = connector.configFields.filter(
    (f) => f.secret && config[f.name] === SECRET_PLACEHOLDER,
  );
  if (placeholders.length === 0) return config;
  const names = placeholders.map((f) => `configuration.${f.name}`).join(', ');
  if (stored === undefined || placeholders.some((f) => stored[f.name] === undefined)) {
    throw badRequest(
      'invalid_configuration',
      `${names} is the placeholder "${SECRET_PLACEHOLDER}", but there is no stored secret to keep; send the real value.`,
      { field: `configuration.${placeholders[0]!.name}` },
    );
  }
  const targetFields = connector.configFields.filter((f) => f.target);
  const changed = targetFields.filter((f) => config[f.name] !== stored[f.name]).map((f) => f.name);
  if (changed.length > 0) {
    throw badRequest(
      'secret_required',
      `${names} must be sent again: the placeholder "${SECRET_PLACEHOLDER}" keeps a stored secret only while ` +
        `${targetFields.map((f) => f.name).join(', ')} stay the same, and ${changed.join(', ')} changed.`,
      { field: `configuration.${placeholders[0]!.name}`, changed },
    );
  }
  const out: Record<string, unknown> = { ...config };
  for (const f of placeholders) out[f.name] = stored[f.name];
  return out as T;
}
