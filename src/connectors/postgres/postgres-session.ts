import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import pg from 'pg';
import type { ClientConfig, CustomTypesConfig } from 'pg';
import { checkedSocket } from '../../net/checked-socket.js';
import type { CheckedDestination } from '../../net/egress-policy.js';
import { connectError } from '../network.js';
import { StatementSession, withTimeout } from '../support.js';
import type { WarmSession, WarmSessionSlot } from '../warm-sessions.js';
import type { PgConfig } from './postgres-connector.js';

export const CONNECT_TIMEOUT_MS = 10_000;
/** Side connections (cancel, type lookup) must not hold up an abort for long. */
const SIDE_TIMEOUT_MS = 5_000;

/** Every value arrives as the server's exact text; postgres-values.ts decides what it becomes. */
const rawText = (value: string) => value;
export const RAW_TYPES: CustomTypesConfig = {
  // pg-types' getTypeParser is overloaded per format; one identity parser serves them all.
  getTypeParser: (() => rawText) as CustomTypesConfig['getTypeParser'],
};

/** Session settings that make the text forms predictable whatever the server's defaults are. */
const SESSION_SQL =
  "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres';" +
  " SET extra_float_digits = 3; SET bytea_output = 'hex'";

/**
 * `SET client_connection_check_interval = '5s'` where the server has it (PostgreSQL 14+): a running
 * statement then checks every 5 s whether its client is still connected and ends itself when it is
 * not, so a statement left behind by a crashed qrun does not run on for hours. Without it the server
 * only notices when it next writes to the socket, which a long sort or pg_sleep never does. Optional:
 * the setting is refused on platforms without the kernel support (e.g. Windows), and by wire-compatible
 * servers that report 14+ without having it; the session then goes on without it. (qrun's own
 * timeouts and cancels end statements through the AbortSignal and pg_cancel_backend, not this.)
 */
const CONNECTION_CHECK_SQL =
  "SELECT set_config('client_connection_check_interval', '5s', false)" +
  " WHERE current_setting('server_version_num')::int >= 140000";

/**
 * `stream` is a socket that can only dial the destination's checked addresses (the egress policy
 * already resolved and judged them). `host` stays the host name the user gave: pg passes it to
 * tls.connect as `servername` (for names; RFC 6066 forbids IPs there) and as `host`, so with ssl on
 * the certificate is still verified against that name, never against the address dialled. pg would
 * read a host starting with `/` as a Unix socket directory; validation refuses those, and the
 * checked socket refuses to connect to a path anyway.
 */
function clientConfig(config: PgConfig, stream: () => Duplex): ClientConfig {
  const password = config.password ?? '';
  return {
    host: config.hostname,
    port: config.port,
    database: config.database,
    user: config.username,
    // A function, so pg never falls back to the operator's PGPASSWORD or ~/.pgpass.
    password: () => password,
    ssl: config.ssl ? { rejectUnauthorized: true } : false,
    application_name: 'qrun',
    keepAlive: true,
    types: RAW_TYPES,
    stream,
  };
}

/**
 * A connected client with the qrun session settings, on a socket to `destination` (checked by the
 * egress policy); closed again if anything fails. A TCP-level failure (refused, unreachable, timed
 * out) becomes one DatabaseError that does not say which (see network.ts, connectError).
 */
export async function openPgClient(
  config: PgConfig,
  destination: CheckedDestination,
  timeoutMs = CONNECT_TIMEOUT_MS,
): Promise<pg.Client> {
  const connection = checkedSocket(destination);
  const client = new pg.Client(clientConfig(config, () => connection.socket));
  // Socket errors also reach the pending query; without a listener an idle one would crash the process.
  client.on('error', () => undefined);
  // Our own deadline instead of pg's connectionTimeoutMillis, whose error has no code: a timeout must
  // read as ETIMEDOUT to be reported like any other unreachable destination.
  const deadline = setTimeout(() => connection.socket.destroy(connectTimeout()), timeoutMs);
  try {
    try {
      await client.connect();
    } finally {
      clearTimeout(deadline);
    }
    await applySessionSettings(client);
    return client;
  } catch (err) {
    await endPgClient(client);
    throw connectError(err, connection, destination);
  }
}

/** qrun's session settings, on a new session or one just reset by DISCARD ALL. */
async function applySessionSettings(client: pg.Client): Promise<void> {
  // One round trip for both (it counts against a distant server). A refused check fails the whole
  // batch, which PostgreSQL runs as one transaction, so the settings are then made alone.
  await client.query(`${SESSION_SQL}; ${CONNECTION_CHECK_SQL}`).catch(() => client.query(SESSION_SQL));
}

function connectTimeout(): Error {
  return Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' });
}

/** The backend's process id, which pg knows but its type declarations do not show. */
function backendPid(client: pg.Client): number | null {
  const pid: unknown = Reflect.get(client, 'processID');
  return typeof pid === 'number' ? pid : null;
}

/** Ends a client without waiting forever: pg destroys the socket when a query is still active. */
export async function endPgClient(client: pg.Client): Promise<void> {
  await withTimeout(
    client.end().catch(() => undefined),
    SIDE_TIMEOUT_MS,
    () => undefined,
  );
}

/**
 * Runs `fn` on a short-lived side connection to the same checked destination as the statement's own
 * connection (the same server, which pg_cancel_backend needs; no new lookup).
 */
export async function withSideClient<T>(
  config: PgConfig,
  destination: CheckedDestination,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = await openPgClient(config, destination, SIDE_TIMEOUT_MS);
  try {
    return await fn(client);
  } finally {
    await endPgClient(client);
  }
}

/** A pg client as the warm-session pool holds it. */
class WarmPgClient implements WarmSession {
  constructor(readonly client: pg.Client) {}

  end(): Promise<void> {
    return endPgClient(this.client);
  }

  onLost(listener: () => void): () => void {
    this.client.on('end', listener);
    return () => this.client.off('end', listener);
  }
}

/**
 * Makes a finished statement's session as good as new: DISCARD ALL drops what the user's statement may
 * have left (settings, temporary tables, prepared statements, advisory locks, LISTENs, SET ROLE), then
 * qrun's settings are made again. DISCARD ALL refuses to run inside a transaction block, so a statement
 * that left one open (`BEGIN`) fails here and its session is ended instead.
 */
async function resetSession(client: pg.Client): Promise<void> {
  await client.query('DISCARD ALL');
  await applySessionSettings(client);
}

/**
 * Which warm sessions a statement may reuse: the same stored connection (the slot's owner), the same
 * configuration and the same checked addresses. Hashed, so no password sits in the pool's keys.
 */
function warmKey(config: PgConfig, destination: CheckedDestination): string {
  return createHash('sha256')
    .update(JSON.stringify(['postgresql', config, destination]))
    .digest('base64');
}

/**
 * One statement's connection: a warm one from the pool where the statement has a slot there, a new one
 * otherwise. Abort stops the backend's statement with pg_cancel_backend from a side connection (ending
 * the client alone would not) and ends the client; every exit path ends or releases the client exactly
 * once (see StatementSession). A statement that ran to its end gives its client back to the pool, reset.
 */
export class PgSession extends StatementSession<pg.Client> {
  private readonly warmKey: string | undefined;

  constructor(
    private readonly config: PgConfig,
    /** Checked once per statement; its side connections (types, cancel) reach the same addresses. */
    readonly destination: CheckedDestination,
    signal: AbortSignal,
    private readonly warm?: WarmSessionSlot,
  ) {
    super(signal);
    this.warmKey = warm?.pool.enabled ? warmKey(config, destination) : undefined;
  }

  protected open(): Promise<pg.Client> {
    const taken =
      this.warmKey === undefined ? undefined : this.warm?.pool.take(this.warm.owner, this.warmKey);
    if (taken instanceof WarmPgClient) return Promise.resolve(taken.client);
    if (taken !== undefined) void taken.end();
    return openPgClient(this.config, this.destination);
  }

  /** Resets the client and gives it to the pool, without making the statement's last batch wait for that. */
  protected override release(client: pg.Client): Promise<void> {
    const { warm, warmKey: key } = this;
    if (warm === undefined || key === undefined || !warm.pool.enabled) return endPgClient(client);
    void withTimeout(resetSession(client), SIDE_TIMEOUT_MS, () =>
      Promise.reject(new Error('reset timed out')),
    ).then(
      () => warm.pool.give(warm.owner, key, new WarmPgClient(client)),
      () => endPgClient(client),
    );
    return Promise.resolve();
  }

  protected async shut(client: pg.Client, cancel: boolean): Promise<void> {
    const pid = backendPid(client);
    if (cancel && pid !== null) {
      await withSideClient(this.config, this.destination, (side) =>
        side.query('SELECT pg_cancel_backend($1)', [pid]),
      ).catch(() => undefined);
    }
    await endPgClient(client);
  }

  /** A side connection to the same server, e.g. to look types up. */
  side<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    return this.guard(withSideClient(this.config, this.destination, fn));
  }
}
