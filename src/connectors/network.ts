import { Type, type Static } from 'typebox';
import { isAppError } from '../core/errors.js';
import { isUnreachable, unreachableMessage, type CheckedSocket } from '../net/checked-socket.js';
import { checkHostnameSyntax, HostLookupError, type CheckedDestination } from '../net/egress-policy.js';
import { configSchema, field } from './config-schema.js';
import { DatabaseError, type ConnectorContext } from './connector.js';
import { raceAbort, secretsOf, toDatabaseError } from './support.js';

/**
 * What the engines reached over the network (PostgreSQL, MySQL/MariaDB) share: the configuration
 * schema, and the egress policy as they use it: every connection they open dials a CheckedDestination
 * from here, never the host name itself.
 */

/** The six fields of a network database, differing per engine only in the default port and a few words. */
export function networkConfigSchema(options: { defaultPort: number; database: string; login: string }) {
  return configSchema({
    hostname: field.string({ description: 'Server host name or IP address.', target: true }),
    port: field.port({ description: 'Server TCP port.', default: options.defaultPort, target: true }),
    database: field.string({ description: options.database, target: true }),
    username: field.string({ description: `${options.login} to log in as.`, target: true }),
    password: Type.Optional(
      field.string({ description: `Password of the ${options.login.toLowerCase()}.`, secret: true }),
    ),
    // Turning TLS off would send the kept password over plain TCP.
    ssl: field.boolean({
      description: 'Connect over TLS and verify the server certificate.',
      default: false,
      target: true,
    }),
  });
}

/** A network database's configuration, as its engine sees it (defaults filled). */
export type NetworkConfig = Static<ReturnType<typeof networkConfigSchema>>;

/** Engine.checkConfig of a network engine: a hostname that is no network host is refused before anything else. */
export function checkNetworkConfig(config: NetworkConfig): void {
  checkHostnameSyntax(config.hostname);
}

/**
 * Engine.test() of a network engine: the destination checked first (a refusal stays the AppError, so
 * the caller answers 400 host_not_allowed, and no socket is opened), then a connection to it, the
 * trivial query, and the connection ended; failures as `toError` makes them.
 */
export async function testConnection<K>(
  config: NetworkConfig,
  context: ConnectorContext,
  steps: {
    open(destination: CheckedDestination): Promise<K>;
    query(connection: K): Promise<unknown>;
    end(connection: K): Promise<void>;
    toError(err: unknown): Error;
  },
): Promise<void> {
  const destination = await destinationForTest(config, context);
  try {
    const connection = await steps.open(destination);
    try {
      await steps.query(connection);
    } finally {
      await steps.end(connection);
    }
  } catch (err) {
    throw steps.toError(err);
  }
}

/**
 * For Engine.test() (connection save and test): a refusal stays the AppError, so the caller answers
 * 400 host_not_allowed; a name that does not resolve is a DatabaseError like any failed connect.
 */
async function destinationForTest(
  config: NetworkConfig,
  context: ConnectorContext,
): Promise<CheckedDestination> {
  try {
    return await context.egress.check(config);
  } catch (err) {
    if (err instanceof HostLookupError) throw new DatabaseError(err.message, err.code, { cause: err });
    throw err;
  }
}

/**
 * For a query: the policy may have changed since the connection was saved. A refusal fails the query
 * with the same sentence as the 400 (a DatabaseError, since anything else is an internal error to the
 * query runner); an abort while the name resolves is the QueryAbortedError.
 */
export async function destinationForQuery(
  config: NetworkConfig,
  context: ConnectorContext,
  signal: AbortSignal,
): Promise<CheckedDestination> {
  try {
    return await raceAbort(context.egress.check(config), signal);
  } catch (err) {
    if (isAppError(err)) throw new DatabaseError(err.message, err.key, { cause: err });
    if (err instanceof HostLookupError) throw new DatabaseError(err.message, err.code, { cause: err });
    throw toDatabaseError(err, { signal, secrets: secretsOf(config) });
  }
}

/**
 * A failed connect as the caller sees it: a TCP-level failure (refused, unreachable, timed out) is one
 * DatabaseError that does not say which (see unreachableMessage); anything else stays as it is.
 */
export function connectError(err: unknown, socket: CheckedSocket, destination: CheckedDestination): unknown {
  return isUnreachable(err, socket)
    ? new DatabaseError(unreachableMessage(destination), 'unreachable', { cause: err })
    : err;
}
