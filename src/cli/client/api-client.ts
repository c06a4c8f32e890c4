import { isLosslessNumber, parse } from 'lossless-json';
import { CliError, EXIT } from './exit-codes.js';

/** The API's error envelope. */
interface ErrorBody {
  status?: unknown;
  message?: unknown;
  key?: unknown;
}

/** A request the API answered with an error status. */
export class ApiError extends CliError {
  constructor(
    message: string,
    readonly status: number,
    readonly key: string | undefined,
  ) {
    super(message, status === 401 || status === 403 ? EXIT.unreachable : EXIT.failed);
    this.name = 'ApiError';
  }
}

export interface RequestOptions {
  body?: unknown;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

/** Parses JSON without losing digits: every number becomes a LosslessNumber holding its text. */
export function parseExact<T = unknown>(text: string): T {
  return parse(text) as T;
}

/** A number of the API's metadata (counts, positions, milliseconds), read from a lossless parse. */
export function num(value: unknown): number | undefined {
  if (isLosslessNumber(value)) return Number(value.value);
  return typeof value === 'number' ? value : undefined;
}

const RETRIES = 5;

/** The qrun HTTP API over fetch: authentication, error envelopes, lossless JSON. */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly apiKey: string,
  ) {}

  /** User and partner keys go as Bearer, organization keys (qrun_o_…) as Basic with an empty password. */
  private authorization(): string {
    if (this.apiKey.startsWith('qrun_o_')) {
      return `Basic ${Buffer.from(`${this.apiKey}:`).toString('base64')}`;
    }
    return `Bearer ${this.apiKey}`;
  }

  /** An API path or a host-relative link (links.next) on the server. */
  url(path: string): string {
    return new URL(path, this.baseUrl).toString();
  }

  /**
   * Sends one request and returns the response when its status is 2xx; otherwise throws ApiError with
   * the server's message. 429 and 503 on reads are retried after Retry-After (at most 10 s, a few times).
   * A server that cannot be reached is a CliError with exit code 3.
   */
  async raw(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = {
      authorization: this.authorization(),
      accept: 'application/json',
      ...options.headers,
    };
    let body: string | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(this.url(path), { method, headers, body, signal: options.signal });
      } catch (err) {
        if ((err as Error).name === 'AbortError') throw err;
        throw new CliError(`cannot reach ${this.baseUrl}: ${describeFetchError(err)}`, EXIT.unreachable);
      }
      if (res.ok) return res;
      const text = await res.text().catch(() => '');
      if ((res.status === 429 || res.status === 503) && method === 'GET' && attempt < RETRIES) {
        const seconds = Math.min(Number(res.headers.get('retry-after')) || 1, 10);
        await sleep(seconds * 1000, options.signal);
        continue;
      }
      throw apiError(res.status, text);
    }
  }

  /** A JSON request; the whole body, parsed without losing digits. */
  async json<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.raw(method, path, options);
    const text = await res.text();
    if (text === '') return undefined as T;
    try {
      return parseExact<T>(text);
    } catch {
      throw new CliError(`the server answered ${method} ${path} with something other than JSON`, EXIT.failed);
    }
  }

  /** `data` of a JSON envelope. */
  async data<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const body = await this.json<{ data: T }>(method, path, options);
    return body?.data;
  }
}

function apiError(status: number, text: string): ApiError {
  let body: ErrorBody | undefined;
  try {
    body = JSON.parse(text) as ErrorBody;
  } catch {
    body = undefined;
  }
  const key = typeof body?.key === 'string' ? body.key : undefined;
  const message =
    typeof body?.message === 'string' && body.message !== ''
      ? body.message
      : `the server answered HTTP ${status}`;
  return new ApiError(key ? `${message} (${status} ${key})` : `${message} (${status})`, status, key);
}

function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      },
      { once: true },
    );
  });
}
