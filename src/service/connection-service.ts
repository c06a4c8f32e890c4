import type { Principal } from '../auth/principal.js';
import { AppError, badRequest, forbidden, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { systemClock, toWireTime, type Clock } from '../core/time.js';
import { SECRET_PLACEHOLDER, maskSecrets, scrubMessage } from '../connectors/config-fields.js';
import { secretValues, type ConnectionResolver } from '../connectors/connection-resolver.js';
import { DatabaseError, type Connector, type ConnectorContext } from '../connectors/connector.js';
import { HostLookupError } from '../net/egress-policy.js';
import type { ConnectionRow, ConnectionsRepository } from '../store/repositories/connections.js';
import type { Connection, ConnectionType } from '../wire/connections.js';
import { checkName } from './validation.js';

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
    private readonly resolver: ConnectionResolver,
    /** maxTests: connector tests at once in this process (QRUN_MAX_CONNECTION_TESTS). */
    private readonly options: { maxTests?: number; clock?: Clock } = {},
  ) {
    this.now = options.clock ?? systemClock;
  }

  private readonly now: Clock;

  listTypes(): ConnectionType[] {
    return this.resolver.listConnectors().map((c) => ({
      id: c.type,
      name: c.name,
      fields: c.configFields.map((f) => ({ ...f })),
      capabilities: { placeholders: c.capabilities.placeholders, file_based: c.capabilities.fileBased },
    }));
  }

  async list(p: Principal): Promise<Connection[]> {
    const orgId = requireMember(p);
    return (await this.repo.listByOrganization(orgId)).map((row) => this.view(row));
  }

  async get(p: Principal, id: string): Promise<Connection> {
    return this.view(await this.load(p, id));
  }

  async create(
    p: Principal,
    input: { name: string; type: string; configuration: unknown; validate?: boolean },
  ): Promise<Connection> {
    const orgId = requireManager(p);
    const connector = this.connector(input.type);
    const name = checkName(input.name);
    const context = this.resolver.contextFor(orgId);
    const config = this.validate(connector, input.configuration, undefined, context);
    await this.checkEgress(connector, config, context);
    const status =
      input.validate === false ? CONNECTION_STATUS.untested : await this.runTest(connector, config, context);
    const now = this.now();
    const row: ConnectionRow = {
      id: newId(),
      organization_id: orgId,
      name,
      type: connector.type,
      configuration: JSON.stringify(this.resolver.seal(connector, config)),
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
  ): Promise<Connection> {
    requireManager(p);
    const row = await this.load(p, id);
    const connector = this.connector(row.type);
    if (input.type !== undefined && input.type !== row.type) {
      throw badRequest('invalid_connection_type', `A connection's type cannot change (it is ${row.type}).`, {
        field: 'type',
      });
    }
    const changes: Partial<ConnectionRow> = { updated_at: this.now() };
    if (input.name !== undefined) changes.name = checkName(input.name);
    if (input.configuration !== undefined) {
      const stored = this.resolver.open(connector, JSON.parse(row.configuration) as Record<string, unknown>);
      const context = this.resolver.contextFor(row.organization_id);
      const config = this.validate(connector, input.configuration, stored, context);
      await this.checkEgress(connector, config, context);
      changes.status =
        input.validate === false
          ? CONNECTION_STATUS.untested
          : await this.runTest(connector, config, context);
      changes.status_error = null;
      changes.configuration = JSON.stringify(this.resolver.seal(connector, config));
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
    const context = this.resolver.contextFor(requireMember(p));
    const connector = this.connector(input.type);
    const config = this.validate(connector, input.configuration, undefined, context);
    await this.checkEgress(connector, config, context);
    return { status: await this.runTest(connector, config, context) };
  }

  // ---- helpers ----

  private async load(p: Principal, id: string): Promise<ConnectionRow> {
    const orgId = requireMember(p);
    const row = await this.repo.find(orgId, id);
    if (!row) throw notFound('connection', id);
    return row;
  }

  private connector(type: unknown): Connector {
    return this.resolver.connector(type);
  }

  private validate(
    connector: Connector,
    input: unknown,
    stored: Record<string, unknown> | undefined,
    context: ConnectorContext,
  ): Record<string, unknown> {
    const fields = connector.parseConfig(input);
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
    const secrets = secretValues(connector, config);
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

  private view(row: ConnectionRow): Connection {
    const connector = this.connector(row.type);
    const view: Connection = {
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
