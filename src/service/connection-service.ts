import type { Principal } from '../auth/principal.js';
import { formatGoDuration, parseGoDuration } from '../core/duration.js';
import { AppError, badRequest, forbidden, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { isoAfter, systemClock, toWireTime, type Clock } from '../core/time.js';
import { SECRET_PLACEHOLDER, maskSecrets } from '../connectors/config-fields.js';
import { CONNECTION_STATUS, testConnectionWithin } from '../connectors/connection-check.js';
import type { ConnectionResolver } from '../connectors/connection-resolver.js';
import type { Connector, ConnectorContext } from '../connectors/connector.js';
import { HostLookupError } from '../net/egress-policy.js';
import type { ConnectionRow, ConnectionsRepository } from '../store/repositories/connections.js';
import type { Actor, Connection, ConnectionType, SavedConnection } from '../wire/connections.js';
import { checkName } from './validation.js';

const DAY_MS = 86_400_000;
/** The bounds of `healthcheck_interval`: often enough to be useful, rarely enough to spare the databases. */
const MIN_HEALTHCHECK_SECONDS = 60;
const MAX_HEALTHCHECK_SECONDS = 720 * 3600;
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
      logo_url: null,
      operations: operationsOf(c),
      use_oauth: false,
      configurationForm: { jsonschema: c.configSchema },
      fields: c.configFields.map((f) => ({ ...f })),
      // Polytomic's four roles (qrun's connections are sources of queries), then qrun's own.
      capabilities: {
        source: true,
        destination: false,
        enrichment: false,
        orchestration: false,
        placeholders: c.capabilities.placeholders,
        file_based: c.capabilities.fileBased,
      },
    }));
  }

  async list(p: Principal): Promise<Connection[]> {
    const orgId = requireMember(p);
    const rows = await this.repo.listByOrganization(orgId);
    const calls = await this.apiCalls(rows.map((r) => r.id));
    return rows.map((row) => this.view(row, calls));
  }

  async get(p: Principal, id: string): Promise<Connection> {
    const row = await this.load(p, id);
    return this.view(row, await this.apiCalls([row.id]));
  }

  async create(
    p: Principal,
    input: {
      name: string;
      type: string;
      configuration: unknown;
      validate?: boolean;
      healthcheck_interval?: string | null;
    },
  ): Promise<SavedConnection> {
    const orgId = requireManager(p);
    const connector = this.connector(input.type);
    const name = checkName(input.name);
    const interval = healthcheckSeconds(input.healthcheck_interval) ?? null;
    const context = this.resolver.contextFor(orgId);
    const config = this.validate(connector, input.configuration, undefined, context);
    await this.checkEgress(connector, config, context);
    const status =
      input.validate === false ? CONNECTION_STATUS.untested : await this.runTest(connector, config, context);
    const now = this.now();
    const actor = JSON.stringify(actorOf(p));
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
      created_by: actor,
      updated_by: actor,
      healthcheck_interval_seconds: interval,
      healthcheck_due_at: interval === null ? null : isoAfter(now, interval * 1000),
      healthcheck_running_until: null,
    };
    await this.repo.insert(row);
    return this.saved(row, new Map());
  }

  /**
   * Replaces the name and/or configuration. A secret sent back as the placeholder keeps the stored one,
   * so a client can round-trip what GET returned, but only while the destination stays the same.
   */
  async update(
    p: Principal,
    id: string,
    input: {
      name?: string;
      type?: string;
      configuration?: unknown;
      validate?: boolean;
      healthcheck_interval?: string | null;
    },
  ): Promise<SavedConnection> {
    requireManager(p);
    const row = await this.load(p, id);
    const connector = this.connector(row.type);
    if (input.type !== undefined && input.type !== row.type) {
      throw badRequest('invalid_connection_type', `A connection's type cannot change (it is ${row.type}).`, {
        field: 'type',
      });
    }
    const now = this.now();
    const changes: Partial<ConnectionRow> = { updated_at: now, updated_by: JSON.stringify(actorOf(p)) };
    if (input.name !== undefined) changes.name = checkName(input.name);
    const interval = healthcheckSeconds(input.healthcheck_interval);
    if (interval !== undefined) changes.healthcheck_interval_seconds = interval;
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
    // A new interval, or a new configuration (just tested): the next check is one interval from now.
    if (interval !== undefined || changes.configuration !== undefined) {
      const seconds = interval !== undefined ? interval : (row.healthcheck_interval_seconds ?? null);
      changes.healthcheck_due_at = seconds === null ? null : isoAfter(now, seconds * 1000);
    }
    await this.repo.update(id, changes);
    // Sessions opened under the old configuration are not reused anyway (warm-sessions.ts); end them now.
    if (changes.configuration !== undefined) this.resolver.forgetSessions(row.organization_id, id);
    return this.saved({ ...row, ...changes }, await this.apiCalls([id]));
  }

  async delete(p: Principal, id: string): Promise<void> {
    const orgId = requireManager(p);
    if (!(await this.repo.delete(orgId, id))) throw notFound('connection', id);
    this.resolver.forgetSessions(orgId, id);
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
    // Where the engine will connect, whatever its fields are called (MySQL's database is `dbname`).
    const target = connector.target?.(config);
    if (target === undefined) return;
    try {
      await context.egress.check(target);
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
    try {
      await testConnectionWithin(connector, config, context);
      return CONNECTION_STATUS.healthy;
    } catch (err) {
      if (err instanceof AppError) throw err;
      // The message has the secrets removed already (testConnectionWithin).
      const message = err instanceof Error ? err.message : String(err);
      throw new AppError(400, 'connection_invalid', `Could not connect: ${message}`, { cause: err });
    }
  }

  /** api_calls_last_24_hours of these connections: their queries since a day before now. */
  private apiCalls(ids: readonly string[]): Promise<Map<string, number>> {
    return this.repo.queryCountsSince(ids, isoAfter(this.now(), -DAY_MS));
  }

  /**
   * A stored connection as it travels: Polytomic's ConnectionResponseSchema, every field. A configuration
   * stored under earlier field names (MySQL's `database`, `username`, `password` before Polytomic's) is
   * shown under the current ones.
   */
  private view(row: ConnectionRow, apiCalls: ReadonlyMap<string, number>): Connection {
    const connector = this.connector(row.type);
    const seconds = row.healthcheck_interval_seconds ?? null;
    return {
      id: row.id,
      name: row.name,
      type: { id: connector.type, name: connector.name, logo_url: null, operations: operationsOf(connector) },
      configuration: maskSecrets(
        connector.configFields,
        connector.canonicalNames(JSON.parse(row.configuration) as Record<string, unknown>),
      ),
      organization_id: row.organization_id,
      status: row.status,
      status_error: row.status_error ?? null,
      saved: true,
      policies: [],
      healthcheck_interval: seconds === null ? null : formatGoDuration(seconds),
      created_at: toWireTime(row.created_at),
      updated_at: toWireTime(row.updated_at),
      created_by: actorFrom(row.created_by),
      updated_by: actorFrom(row.updated_by),
      api_calls_last_24_hours: apiCalls.get(row.id) ?? 0,
      parent_connection_id: null,
    };
  }

  /** After a create or an update: Polytomic's CreateConnectionResponseSchema. */
  private saved(row: ConnectionRow, apiCalls: ReadonlyMap<string, number>): SavedConnection {
    return { ...this.view(row, apiCalls), auth_code: null, auth_url: null };
  }
}

/**
 * What qrun does with connections of a type, from what its connector offers (Polytomic lists the
 * operations a type takes part in; qrun's are these): every connector streams a statement's rows
 * (`query`), stops it on the server when aborted (`cancel`, checked by the connector suite), binds
 * positional parameters in its placeholder style (`parameters`) and has a connection test (`healthcheck`).
 */
function operationsOf(connector: Connector): string[] {
  const operations = ['query', 'cancel'];
  if (connector.capabilities.placeholders) operations.push('parameters');
  operations.push('healthcheck');
  return operations;
}

/** Who is making a change, as Polytomic's OutputActor: the user, or the organization key's organization. */
function actorOf(p: Principal): Actor {
  if (p.kind === 'user') return { id: p.userId, name: p.email, type: 'user' };
  if (p.kind === 'organization')
    return { id: p.organizationId, name: p.organizationName, type: 'organization' };
  throw forbidden('The partner key manages organizations; use a user or organization key for connections.');
}

function actorFrom(stored: string | null | undefined): Actor | null {
  return stored ? (JSON.parse(stored) as Actor) : null;
}

/**
 * `healthcheck_interval` as given: undefined when absent (unchanged), null for none (null or ''), else
 * its whole seconds, from 1m to 720h.
 */
function healthcheckSeconds(input: string | null | undefined): number | null | undefined {
  if (input === undefined) return undefined;
  if (input === null || input === '') return null;
  const seconds = parseGoDuration(input);
  const problem =
    seconds === undefined
      ? 'must be a duration such as "30m", "3h30m" or "24h" (numbers with the units h, m and s)'
      : !Number.isInteger(seconds)
        ? 'must be a whole number of seconds'
        : seconds < MIN_HEALTHCHECK_SECONDS || seconds > MAX_HEALTHCHECK_SECONDS
          ? 'must be from 1m to 720h'
          : undefined;
  if (problem !== undefined) {
    throw badRequest('invalid_healthcheck_interval', `healthcheck_interval ${problem}; got "${input}".`, {
      field: 'healthcheck_interval',
    });
  }
  return seconds!;
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
