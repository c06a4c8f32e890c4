import { isAppError } from '../core/errors.js';
import { scrubMessage } from './config-fields.js';
import { secretValues } from './connection-resolver.js';
import { DatabaseError, type Connector, type ConnectorConfig, type ConnectorContext } from './connector.js';

/**
 * The connection test, as both the connection API (on save and `POST /api/connections/test`) and the
 * periodic health check (src/worker/connection-health.ts) run it, and the statuses it leaves on a stored
 * connection.
 */

/** A stored connection's `status`: what its last test found. */
export const CONNECTION_STATUS = Object.freeze({
  /** The last test (on save, or a periodic check) connected and ran the trivial query. */
  healthy: 'healthy',
  /** The last periodic check failed; `status_error` says why. */
  unhealthy: 'unhealthy',
  /** Saved with `validate: false` and not checked since. */
  untested: 'untested',
});

/** A test that gets no answer within this long fails. */
export const CONNECTION_TEST_TIMEOUT_MS = 20_000;

/**
 * Connects with `config` and runs the trivial query, within `timeoutMs`. Resolves when that worked;
 * otherwise throws the AppError of a refusal before any socket (the egress policy: host_not_allowed),
 * or a DatabaseError whose message has the configuration's secrets removed.
 */
export async function testConnectionWithin(
  connector: Connector,
  config: ConnectorConfig,
  context: ConnectorContext,
  timeoutMs = CONNECTION_TEST_TIMEOUT_MS,
): Promise<void> {
  const secrets = secretValues(connector, config);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      connector.test(config, context),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new DatabaseError(`No answer from the database within ${timeoutMs / 1000} s.`)),
          timeoutMs,
        );
      }),
    ]);
  } catch (err) {
    if (isAppError(err)) throw err;
    const message = scrubMessage(err instanceof Error ? err.message : String(err), secrets);
    throw new DatabaseError(message, err instanceof DatabaseError ? err.code : undefined, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}
