/**
 * Every failure a client can see is an AppError: a machine `key`, an HTTP `status` and a sentence a
 * person can act on. Code below the HTTP layer throws these; the HTTP error handler maps them once.
 * The `cause` is kept for logs and never shown to clients.
 */
export class AppError extends Error {
  readonly status: number;
  readonly key: string;
  readonly metadata: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(
    status: number,
    key: string,
    message: string,
    options: { cause?: unknown; metadata?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.status = status;
    this.key = key;
    this.metadata = options.metadata;
    this.headers = options.headers;
  }
}

/** An AppError as data (status, key, message, metadata): how a replayed outcome is kept in the store. */
export interface ErrorRecord {
  status: number;
  key: string;
  message: string;
  metadata?: Record<string, unknown>;
}

export function errorRecord(err: AppError): ErrorRecord {
  return {
    status: err.status,
    key: err.key,
    message: err.message,
    ...(err.metadata ? { metadata: err.metadata } : {}),
  };
}

export function fromErrorRecord(record: ErrorRecord): AppError {
  return new AppError(record.status, record.key, record.message, { metadata: record.metadata });
}

export const badRequest = (key: string, message: string, metadata?: Record<string, unknown>) =>
  new AppError(400, key, message, { metadata });

export const unauthorized = (message = 'Missing or invalid API key.') =>
  new AppError(401, 'unauthorized', message);

export const forbidden = (message = 'This API key is not allowed to do that.') =>
  new AppError(403, 'forbidden', message);

export const notFound = (what: string, id?: string) =>
  new AppError(404, 'not_found', id ? `No ${what} with id ${id} was found.` : `No such ${what}.`);

export const conflict = (key: string, message: string) => new AppError(409, key, message);

export const unavailable = (message: string, retryAfterSeconds: number) =>
  new AppError(503, 'unavailable', message, { headers: { 'retry-after': String(retryAfterSeconds) } });

export function isAppError(value: unknown): value is AppError {
  return value instanceof AppError;
}

/**
 * Text fields are stored as text, and PostgreSQL text cannot hold U+0000: refuse it up front, on every
 * store alike, instead of failing later with a 500 on one of them.
 */
export function rejectNul(value: string, field: string): void {
  if (value.includes('\u0000')) {
    throw badRequest(
      'invalid_request',
      `${field} contains a NUL character (U+0000), which qrun does not accept.`,
      {
        field,
      },
    );
  }
}
