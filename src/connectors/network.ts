import { Type } from 'typebox';
import { isAppError } from '../core/errors.js';
import { isUnreachable, unreachableMessage, type CheckedSocket } from '../net/checked-socket.js';
import {
  checkHostnameSyntax,
  HostLookupError,
  type CheckedDestination,
  type EgressTarget,
} from '../net/egress-policy.js';
import { field } from './config-schema.js';
import { DatabaseError, type ConnectorContext } from './connector.js';
import { raceAbort, toDatabaseError } from './support.js';

/**
 * What the engines reached over the network (PostgreSQL, MySQL/MariaDB) share: the configuration
 * schema, and the egress policy as they use it: every connection they open dials a CheckedDestination
 * from here, never the host name itself.
 */

/**
 * The six fields of a network database, each engine naming them as Polytomic's type of the same id does
 * (PostgreSQL: `database`, `username`, `password`; MySQL: `dbname`, `account`, `passwd`), with other
 * accepted spellings as aliases, and differing otherwise only in the default port and a few words.
 */
export const networkField = {
  hostname: () => field.string({ description: 'Server host name or IP address.', target: true }),
  port: (defaultPort: number) =>
    field.port({ description: 'Server TCP port.', default: defaultPort, target: true }),
  database: (description: string, aliases: readonly string[] = []) =>
    field.string({ description: withAliases(description, aliases), target: true, aliases }),
  login: (login: string, aliases: readonly string[] = []) =>
    field.string({ description: withAliases(`${login} to log in as.`, aliases), target: true, aliases }),
  password: (login: string, aliases: readonly string[] = []) =>
    Type.Optional(
      field.string({
        description: withAliases(`Password of the ${login.toLowerCase()}.`, aliases),
        secret: true,
        aliases,
      }),
    ),
  // Turning TLS off would send the kept password over plain TCP.
  ssl: () =>
    field.boolean({
      description: 'Connect over TLS and verify the server certificate.',
      default: false,
      target: true,
    }),
};

/** A field's description saying which other names it is accepted under (GET /api/connection_types lists no aliases). */
function withAliases(description: string, aliases: readonly string[]): string {
  return aliases.length === 0
    ? description
    : `${description} Also accepted as ${aliases.map((a) => `\`${a}\``).join(' or ')}.`;
}

/** Engine.checkConfig of a network engine: a hostname that is no network host is refused before anything else. */
export function checkNetworkConfig(config: { hostname: string }): void {
  checkHostnameSyntax(config.hostname);
}

/**
 * Engine.test() of a network engine: the destination checked first (a refusal stays the AppError, so
 * the caller answers 400 host_not_allowed, and no socket is opened), then a connection to it, the
 * trivial query, and the connection ended; failures as `toError` makes them.
 */
export async function testConnection<K>(
  target: EgressTarget,
  context: ConnectorContext,
  steps: {
    open(destination: CheckedDestination): Promise<K>;
    query(connection: K): Promise<unknown>;
    end(connection: K): Promise<void>;
    toError(err: unknown): Error;
  },
): Promise<void> {
  const destination = await destinationForTest(target, context);
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
  target: EgressTarget,
  context: ConnectorContext,
): Promise<CheckedDestination> {
  try {
    return await context.egress.check(target);
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
  target: EgressTarget,
  context: ConnectorContext,
  signal: AbortSignal,
  /** The configuration's secrets, scrubbed from any message. */
  secrets: readonly string[],
): Promise<CheckedDestination> {
  try {
    return await raceAbort(context.egress.check(target), signal);
  } catch (err) {
    if (isAppError(err)) throw new DatabaseError(err.message, err.key, { cause: err });
    // A name that does not resolve now may resolve again (a DNS outage): retryable, like any failed connect.
    if (err instanceof HostLookupError)
      throw new DatabaseError(err.message, 'connection_failed', { cause: err, retryable: true });
    throw toDatabaseError(err, { signal, secrets });
  }
}

/**
 * A failed connect as the caller sees it: a TCP-level failure (refused, unreachable, timed out) is one
 * DatabaseError that does not say which (see unreachableMessage); anything else stays as it is.
 */
export function connectError(err: unknown, socket: CheckedSocket, destination: CheckedDestination): unknown {
  return isUnreachable(err, socket)
    ? new DatabaseError(unreachableMessage(destination), 'connection_failed', { cause: err, retryable: true })
    : err;
}
