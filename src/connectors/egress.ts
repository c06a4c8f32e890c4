import { isAppError } from '../core/errors.js';
import { checkHostnameSyntax, HostLookupError, type CheckedDestination } from '../net/egress-policy.js';
import { DatabaseError, type ConnectorContext } from './connector.js';
import type { NetworkConfig } from './network-config.js';

/**
 * The egress policy as the network connectors (PostgreSQL, MySQL) use it: every connection they open
 * dials a CheckedDestination from here, never the host name itself.
 */

/** validateConfig of a network connector: a hostname that is no network host is refused before anything else. */
export function validateNetworkConfig<C>(config: C): C {
  const { hostname } = config as unknown as NetworkConfig;
  if (typeof hostname === 'string') checkHostnameSyntax(hostname);
  return config;
}

/**
 * For Connector.test() (connection save and test): a refusal stays the AppError, so the caller answers
 * 400 host_not_allowed; a name that does not resolve is a DatabaseError like any failed connect.
 */
export async function destinationForTest(
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
 * query runner).
 */
export async function destinationForQuery(
  config: NetworkConfig,
  context: ConnectorContext,
): Promise<CheckedDestination> {
  try {
    return await context.egress.check(config);
  } catch (err) {
    if (isAppError(err)) throw new DatabaseError(err.message, err.key, { cause: err });
    if (err instanceof HostLookupError) throw new DatabaseError(err.message, err.code, { cause: err });
    throw err;
  }
}
