import mysql from 'mysql2';
import type { Connection, ConnectionOptions } from 'mysql2';
import { checkedSocket, type CheckedSocket } from '../../net/checked-socket.js';
import type { CheckedDestination } from '../../net/egress-policy.js';
import { connectError } from '../network.js';
import { StatementSession, withTimeout } from '../support.js';
import type { MysqlConfig } from './mysql-connector.js';
import { isFatal } from './mysql-errors.js';

export const CONNECT_TIMEOUT_MS = 10_000;
/** The side connection that kills a statement must not hold up an abort for long. */
const SIDE_TIMEOUT_MS = 5_000;

/**
 * UTC, so TIMESTAMP text is UTC; a generous net_write_timeout, because back-pressure may leave the
 * server waiting on a slow consumer longer than the 60 s default before it gives up on the client.
 *
 * MariaDB and MySQL have no counterpart of PostgreSQL's client_connection_check_interval: a
 * statement whose client died (a crashed qrun) runs on until it next writes a row to the socket,
 * so a long sort, join or aggregate finishes first (only SLEEP() looks at the connection, every 5 s).
 * Statement timeouts (max_statement_time, max_execution_time) are not the answer: qrun enforces its
 * own through the AbortSignal and KILL QUERY.
 */
const SESSION_SQL = "SET time_zone = '+00:00', net_write_timeout = 3600";

/**
 * `stream` is an already dialling socket to the destination's checked addresses: mysql2 then opens
 * no socket of its own (no DNS lookup, and `socketPath` is never read; it is never set either).
 * `host` stays the host name the user gave: mysql2 uses it as the TLS `servername`, and
 * `verifyIdentity` makes it check the certificate against that name (without it, mysql2 verifies the
 * chain only), never against the address dialled.
 */
function connectionOptions(
  config: MysqlConfig,
  connection: CheckedSocket,
  timeoutMs: number,
): ConnectionOptions {
  return {
    host: config.hostname,
    port: config.port,
    stream: connection.socket,
    database: config.dbname,
    user: config.account,
    password: config.passwd ?? '',
    ssl: config.ssl ? { rejectUnauthorized: true, verifyIdentity: true } : undefined,
    connectTimeout: timeoutMs,
    charset: 'utf8mb4',
    timezone: 'Z',
    // Exact forms: BIGINT and DECIMAL as digits, dates and JSON as the server's text.
    supportBigNumbers: true,
    bigNumberStrings: true,
    decimalNumbers: false,
    dateStrings: true,
    jsonStrings: true,
    multipleStatements: false,
    // A user's SQL must never make qrun read its own files (LOAD DATA LOCAL INFILE).
    flags: ['-LOCAL_FILES'],
  };
}

/**
 * A connected connection with the qrun session settings, on a socket to `destination` (checked by the
 * egress policy); destroyed again if anything fails. A TCP-level failure (refused, unreachable, timed
 * out) becomes one DatabaseError that does not say which (see network.ts, connectError).
 */
export async function openMysqlConnection(
  config: MysqlConfig,
  destination: CheckedDestination,
  timeoutMs = CONNECT_TIMEOUT_MS,
): Promise<Connection> {
  const checked = checkedSocket(destination);
  checked.socket.setNoDelay(true);
  checked.socket.setKeepAlive(true);
  checked.socket.connect(destination.port, destination.hostname);
  const connection = mysql.createConnection(connectionOptions(config, checked, timeoutMs));
  // Fatal errors also reach the pending command; without a listener an idle one would crash the process.
  connection.on('error', () => undefined);
  try {
    try {
      await new Promise<void>((resolve, reject) =>
        connection.connect((err) => (err ? reject(err) : resolve())),
      );
    } catch (err) {
      throw connectError(err, checked, destination);
    }
    await runSql(connection, SESSION_SQL);
    return connection;
  } catch (err) {
    connection.destroy();
    throw err;
  }
}

/** Runs one statement and waits for it, discarding any rows. */
export function runSql(connection: Connection, sql: string): Promise<void> {
  return new Promise((resolve, reject) => {
    connection.query(sql, (err) => (err ? reject(err) : resolve()));
  });
}

/** COM_QUIT, so the server does not count an aborted client; destroy if that takes too long. */
export function endMysqlConnection(connection: Connection): Promise<void> {
  return withTimeout(new Promise<void>((resolve) => connection.end(() => resolve())), SIDE_TIMEOUT_MS, () =>
    connection.destroy(),
  );
}

/**
 * Stops the statement running on `threadId` from a short-lived second connection to the same checked
 * destination as the statement's own (the same server; no new lookup).
 */
async function killQuery(
  config: MysqlConfig,
  destination: CheckedDestination,
  threadId: number,
): Promise<void> {
  const side = await openMysqlConnection(config, destination, SIDE_TIMEOUT_MS);
  try {
    // threadId is the server's own integer, never user text.
    await runSql(side, `KILL QUERY ${Math.trunc(threadId)}`);
  } finally {
    side.destroy();
  }
}

/**
 * One statement's own connection. A statement still running when it closes (abort, or the consumer
 * stopped early) is killed on the server first with KILL QUERY from a side connection: dropping the
 * socket alone would leave it running until it next writes. Every exit path closes the connection
 * exactly once (see StatementSession).
 */
export class MysqlSession extends StatementSession<Connection> {
  private ended = false;
  private fatal = false;

  constructor(
    private readonly config: MysqlConfig,
    /** Checked once per statement; the KILL QUERY side connection reaches the same addresses. */
    private readonly destination: CheckedDestination,
    signal: AbortSignal,
  ) {
    super(signal);
  }

  /** The statement has ended (with `error`, if it failed): nothing is left to kill. */
  statementEnded(error?: unknown): void {
    this.ended = true;
    if (error !== undefined && isFatal(error)) this.fatal = true;
  }

  /** Back-pressure: stop and resume reading the socket. */
  pause(): void {
    this.current?.pause();
  }

  resume(): void {
    this.current?.resume();
  }

  protected open(): Promise<Connection> {
    return openMysqlConnection(this.config, this.destination);
  }

  protected override discard(connection: Connection): void {
    connection.destroy();
  }

  protected async shut(connection: Connection, cancel: boolean): Promise<void> {
    if ((cancel || !this.ended) && connection.threadId) {
      await killQuery(this.config, this.destination, connection.threadId).catch(() => undefined);
      connection.destroy();
      return;
    }
    if (this.fatal) connection.destroy();
    else await endMysqlConnection(connection);
  }
}
