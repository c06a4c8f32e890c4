import { isAppError } from '../core/errors.js';
import { scrubMessage } from './config-fields.js';
import {
  DatabaseError,
  QueryAbortedError,
  type CellValue,
  type ColumnInfo,
  type QueryStream,
  type StreamOptions,
} from './connector.js';

/**
 * What every engine needs and none should write again: error description and mapping, batch sizing,
 * abort and timeout races, the statement session that closes exactly once, and the row iterable that
 * releases it however iteration ends. No driver and no TypeBox here.
 */

// ---- errors ----

/** A readable sentence for any thrown value; Node's AggregateError (IPv4 + IPv6 refused) has none of its own. */
export function describeError(err: unknown): string {
  if (err instanceof AggregateError && !err.message) {
    return [...new Set(err.errors.map((e: unknown) => describeError(e)))].join('; ');
  }
  return err instanceof Error ? err.message : String(err);
}

/** A property of a thrown value, if it is a non-empty string (`code`, `sqlState`, `sqlMessage`…). */
export function errorText(err: unknown, property: string): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const value: unknown = Reflect.get(err, property);
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export interface DriverErrorParts {
  /** The database's own message; describeError(err) when absent. */
  message?: string;
  /** The machine-readable code (see DatabaseError): the engine's name for the error, or qrun's. */
  code?: string;
  /** The five-character SQLSTATE, where the engine gives one. */
  sqlstate?: string;
  /** 1-based character offset into the SQL as sent, where the engine gives one. */
  position?: number;
  /** Whether the same statement may succeed when run again. */
  retryable?: boolean;
  /** Used when the message is empty. */
  fallback?: string;
  /** Secret values of the configuration, removed from the message. */
  secrets?: readonly string[];
  /** When it has fired, whatever went wrong is reported as the abort. */
  signal?: AbortSignal;
}

/**
 * The error a caller sees for anything a driver threw: a DatabaseError or QueryAbortedError as it is,
 * QueryAbortedError when the signal fired (the failure is then the abort's doing), else a
 * DatabaseError with the database's message, credentials scrubbed, and its code.
 */
export function toDatabaseError(err: unknown, parts: DriverErrorParts = {}): Error {
  if (err instanceof QueryAbortedError || err instanceof DatabaseError) return err;
  if (parts.signal?.aborted) return new QueryAbortedError(parts.signal.reason);
  const message = parts.message ?? describeError(err);
  const lost = parts.code === undefined && isConnectionLoss(err);
  return new DatabaseError(
    scrubMessage(message || (parts.fallback ?? ''), parts.secrets ?? []),
    parts.code ?? (lost ? 'connection_failed' : undefined),
    {
      cause: err,
      sqlstate: parts.sqlstate,
      position: parts.position,
      retryable: parts.retryable ?? lost,
    },
  );
}

/** Socket and driver codes of a connection that could not be made or was dropped mid-statement. */
const CONNECTION_LOSS_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
]);

/**
 * Whether a driver's error means the connection failed or dropped (so the same query may succeed on a new
 * one): a socket error code, mysql2's PROTOCOL_CONNECTION_LOST, pg's "Connection terminated…".
 */
export function isConnectionLoss(err: unknown): boolean {
  const code = errorText(err, 'code');
  if (code !== undefined && CONNECTION_LOSS_CODES.has(code)) return true;
  return err instanceof Error && err.message.startsWith('Connection terminated');
}

/**
 * A configuration check made again when a statement is about to run (a file, or a symlink, may have
 * changed since the connection was saved): its 400 then fails the query as a DatabaseError.
 */
export function checkedAtOpen<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (isAppError(error)) throw new DatabaseError(error.message, error.key, { cause: error });
    throw error;
  }
}

/** A configuration's password as the list of secrets to scrub. */
export function secretsOf(config: { password?: string | undefined }): string[] {
  return config.password ? [config.password] : [];
}

// ---- batches ----

/** Rows per batch when the hint is unusable. */
const DEFAULT_BATCH_ROWS = 1000;

/** StreamOptions.batchSize made usable: a whole number of at least 1. */
export function batchRows(hint: number): number {
  return Number.isFinite(hint) && hint >= 1 ? Math.floor(hint) : DEFAULT_BATCH_ROWS;
}

// ---- abort and timeouts ----

/** Throws the QueryAbortedError for the signal if it has fired. */
export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new QueryAbortedError(signal.reason);
}

/**
 * `promise`, or a QueryAbortedError the moment the signal fires. On abort the promise is left to settle
 * on its own (its rejection is swallowed): the caller is already tearing the session down.
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(new QueryAbortedError(signal.reason));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new QueryAbortedError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * `promise`, or what `onTimeout` gives after `ms` (which may also throw). The timer never keeps the
 * process alive, and is cleared as soon as the promise settles.
 */
export async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  onTimeout: () => T | Promise<T>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(onTimeout());
      } catch (error) {
        reject(error);
      }
    }, ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Engine.test() for engines whose trivial query goes through their own stream (the file engines):
 * runs it to the end within `ms`, and reports running out of time as a DatabaseError.
 */
export async function testByQuery(
  stream: (options: StreamOptions) => Promise<QueryStream>,
  ms: number,
  timeoutMessage: string,
): Promise<void> {
  try {
    const { rows } = await stream({ signal: AbortSignal.timeout(ms), batchSize: 1 });
    for await (const _batch of rows) {
      // drain
    }
  } catch (error) {
    if (error instanceof QueryAbortedError) throw new DatabaseError(timeoutMessage);
    throw error;
  }
}

// ---- sessions ----

/** A statement that has started on a StatementSession: its columns, and how its rows are read. */
export interface StartedStatement<R> extends Pick<BatchSource<R>, 'read' | 'decode'> {
  columns: ColumnInfo[];
  /** A batch already read (e.g. to learn the columns). */
  first?: RawBatch<R>;
}

/**
 * One statement's own connection, from open to close. An abort closes it with `cancel` (the engine
 * stops the statement on the server first, since dropping the connection alone would not); every
 * exit path closes it exactly once; a connection that finishes opening after an abort is discarded.
 */
export abstract class StatementSession<C> {
  private connection: C | undefined;
  private closing: Promise<void> | undefined;
  private readonly onAbort = () => void this.close(true);

  constructor(protected readonly signal: AbortSignal) {
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Opens the connection (with the engine's session settings). */
  protected abstract open(): Promise<C>;

  /** Stops the statement on the server when `cancel`, then ends the connection. Never throws. */
  protected abstract shut(connection: C, cancel: boolean): Promise<void>;

  /**
   * Hands back the connection of a statement that ran to its end (nothing is left on it). Ends it by
   * default; an engine that keeps warm sessions resets it and keeps it for the next statement.
   */
  protected release(connection: C): Promise<void> {
    return this.shut(connection, false);
  }

  /** Ends a connection that finished opening after the session was closed (nothing runs on it yet). */
  protected discard(connection: C): Promise<void> | void {
    return this.shut(connection, false);
  }

  /** The open connection, once connect() has it. */
  protected get current(): C | undefined {
    return this.connection;
  }

  /** Opens the connection; QueryAbortedError the moment the signal fires. */
  connect(): Promise<C> {
    const opening = this.open();
    opening.then(
      (connection) => {
        if (this.closing) void this.discard(connection);
        else this.connection = connection;
      },
      () => undefined,
    );
    return this.guard(opening);
  }

  /** `promise`, or QueryAbortedError the moment the signal fires. */
  guard<T>(promise: Promise<T>): Promise<T> {
    return raceAbort(promise, this.signal);
  }

  /**
   * The QueryStream of the statement `start` sends on this session's connection. `start` resolves
   * once the columns are known (with the first batch, where reading it told them); from then on the
   * rows are pulled with `read`. The connection is released as soon as the result is exhausted (at
   * once if the first batch was all), and on every failure, which `mapError` turns into what the
   * caller sees.
   */
  async stream<R>(
    start: (connection: C) => Promise<StartedStatement<R>>,
    mapError: (error: unknown) => Error,
  ): Promise<QueryStream> {
    try {
      const { columns, first, read, decode } = await start(await this.connect());
      if (first?.done) await this.close(false, true);
      const close = (cancel: boolean, finished: boolean) => this.close(cancel, finished);
      return { columns, rows: rowBatches(this.signal, { read, decode, mapError, close }, first) };
    } catch (error) {
      await this.close(this.signal.aborted);
      throw mapError(error);
    }
  }

  /**
   * Idempotent: the first call decides whether the statement is also stopped on the server (`cancel`), or
   * whether it ran to its end (`finished`), so that its connection may be released for another statement.
   */
  close(cancel = false, finished = false): Promise<void> {
    this.closing ??= (async () => {
      this.signal.removeEventListener('abort', this.onAbort);
      const connection = this.connection;
      if (connection === undefined) return;
      await (finished && !cancel ? this.release(connection) : this.shut(connection, cancel));
    })();
    return this.closing;
  }
}

// ---- the row iterable ----

/** A batch of rows as the driver gave them, and whether the result ends with it. */
export interface RawBatch<R> {
  rows: R[];
  done: boolean;
}

/** Where a stream's batches come from: one statement's session. */
export interface BatchSource<R> {
  /** The next batch. Called again only while the previous one was not `done`. */
  read(): Promise<RawBatch<R>>;
  /** Driver rows → CellValues (in place where it can); `asIs` where `read` already mapped them. */
  decode(rows: R[]): CellValue[][];
  /** A thrown error as the caller sees it (toDatabaseError with the engine's details); as it is by default. */
  mapError?(error: unknown): Error;
  /**
   * Releases the session; called exactly once: when the source is exhausted (`finished`), on an error
   * (`cancel` when the signal fired: the statement must also stop on the server), or when the consumer stops.
   */
  close(cancel: boolean, finished: boolean): Promise<void> | void;
}

/** BatchSource.decode of a source whose rows are CellValues already. */
export const asIs = (rows: CellValue[][]): CellValue[][] => rows;

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/**
 * The `rows` of a QueryStream over `source`, starting with `first` (a batch the stream already read,
 * e.g. to learn the columns). Each pull checks the signal first; empty batches are skipped; the session
 * is released as soon as the source is exhausted, before the last batch is handed over, and in every
 * other case too (error, abort, or `return()` from a consumer that stopped, even before the first pull).
 */
export function rowBatches<R>(
  signal: AbortSignal,
  source: BatchSource<R>,
  first?: RawBatch<R>,
): AsyncIterable<CellValue[][]> {
  let pending = first;
  let closed: Promise<void> | undefined;
  const close = (cancel: boolean, finished = false) =>
    (closed ??= Promise.resolve(source.close(cancel, finished)));
  const iterator: AsyncIterator<CellValue[][], undefined> = {
    async next() {
      if (closed) return DONE;
      try {
        for (;;) {
          throwIfAborted(signal);
          const batch = pending ?? (await source.read());
          pending = undefined;
          if (batch.done) await close(false, true);
          if (batch.rows.length > 0) {
            return { done: false, value: source.decode(batch.rows) };
          }
          if (batch.done) return DONE;
        }
      } catch (error) {
        await close(signal.aborted);
        throw source.mapError ? source.mapError(error) : error;
      }
    },
    async return() {
      await close(false);
      return DONE;
    },
  };
  return { [Symbol.asyncIterator]: () => iterator };
}
