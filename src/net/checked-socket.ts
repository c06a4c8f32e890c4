import { Socket, type LookupFunction, type TcpSocketConnectOpts } from 'node:net';
import type { CheckedDestination, ResolvedAddress } from './egress-policy.js';

/** A TCP socket bound to one checked destination, and whether it ever completed a TCP handshake. */
export interface CheckedSocket {
  socket: Socket;
  /** True once the TCP connection was established (something accepted it). */
  reached(): boolean;
}

/**
 * A socket whose connect() dials the destination's checked addresses, whatever arguments the driver
 * passes: pg calls `connect(port, host)` with the host name (and `connect(path)` for a Unix socket,
 * which is refused here; validation already refuses host names starting with `/`).
 *
 * Node gets the addresses through a `lookup` function that answers with the checked addresses, so the
 * host name is never resolved again (no DNS rebinding between check and connect), and with several
 * addresses Node still tries them in turn (autoSelectFamily). TLS is left to the driver, which
 * verifies the certificate against the host name (`servername`), not against the address dialled.
 */
export function checkedSocket(destination: CheckedDestination): CheckedSocket {
  const socket = new Socket();
  let reached = false;
  socket.once('connect', () => (reached = true));
  const { addresses, port } = destination;
  const lookup = checkedLookup(addresses);
  // Looked up at call time, so a test's counting wrapper on Socket.prototype.connect sees every dial.
  const dial = (options: TcpSocketConnectOpts) =>
    (Socket.prototype.connect as (this: Socket, options: TcpSocketConnectOpts) => Socket).call(
      socket,
      options,
    );
  socket.connect = ((...args: unknown[]) => {
    const [first] = args;
    if (typeof first === 'string' || (typeof first === 'number' && first !== port)) {
      // A Unix socket path, or another port, never reaches the network.
      process.nextTick(() =>
        socket.destroy(new Error('qrun connects only to the checked TCP destination of this connection.')),
      );
      return socket;
    }
    // One address: dial it as is (a literal IP skips lookup). Several: a host name that is never looked
    // up, since `lookup` answers with the checked addresses.
    const only = addresses.length === 1 ? addresses[0] : undefined;
    return dial({
      port,
      host: only ? only.address : destination.hostname,
      lookup,
    });
  }) as Socket['connect'];
  return { socket, reached: () => reached };
}

/**
 * A `lookup` for Node's net, http and https that answers with the checked addresses, whatever name it is
 * asked about: the name is never resolved again. With several addresses Node still tries them in turn.
 */
export function checkedLookup(addresses: readonly ResolvedAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) {
      callback(
        null,
        addresses.map((a) => ({ address: a.address, family: a.family })),
      );
    } else {
      const wanted = addresses.find((a) => !options.family || a.family === options.family) ?? addresses[0];
      callback(null, wanted?.address ?? '', wanted?.family ?? 4);
    }
  };
}

/** Error codes of a TCP connect that found nobody (refused, filtered, no route, timed out). */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EADDRNOTAVAIL',
]);

/**
 * Whether a failed connect is a TCP-level failure (including a connect timeout), as opposed to an
 * answer from a database (authentication failed, unknown database, TLS refused).
 */
export function isUnreachable(err: unknown, connection: CheckedSocket): boolean {
  // Nothing ever accepted the TCP connection: whatever the error says, no database answered.
  if (!connection.reached()) return true;
  return hasUnreachableCode(err);
}

function hasUnreachableCode(err: unknown): boolean {
  if (err instanceof AggregateError) return err.errors.length > 0 && err.errors.every(hasUnreachableCode);
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNREACHABLE_CODES.has(code);
}

/**
 * One message for every TCP-level connect failure, so that `POST /api/connections/test` cannot tell a
 * refused port from a filtered one (it was used as a port scanner). The time the answer takes still
 * differs (a refusal is quick, a timeout is not): the real defence is the egress allow list
 * (QRUN_EGRESS_ALLOW) plus the API's rate limits.
 */
export function unreachableMessage(destination: { hostname: string; port: number }): string {
  const host =
    destination.hostname.includes(':') && !destination.hostname.startsWith('[')
      ? `[${destination.hostname}]`
      : destination.hostname;
  return `Could not reach ${host}:${destination.port}: no database answered there.`;
}
