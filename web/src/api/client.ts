import { authorizationHeader } from './session';
import type { Connection, ConnectionType, ConfigValue, Me, QueryResponse, QuerySummary } from './types';
import { parseExact } from './exact-json';

/** An error answer of qrun's API ({status, message, key, metadata}), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly key: string,
    message: string,
    readonly metadata?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ApiOptions {
  key: string;
  /** The key was refused (401): the app signs out. */
  onUnauthorized: () => void;
  /** A read is waiting out a rate limit (a message), or has stopped waiting (null). */
  onWaiting?: (message: string | null) => void;
}

export interface RawResponse {
  text: string;
  /** performance.now() when the response's headers arrived. */
  receivedAt: number;
}

/** How many times a read retries after 429 (each after the server's Retry-After). */
const MAX_RATE_LIMIT_RETRIES = 10;

/**
 * qrun's HTTP API as the console uses it. Reads that hit the per-key rate limit wait out Retry-After and
 * try again (scrolling a long result reads many pages); writes report the 429 instead.
 */
export class Api {
  constructor(private readonly options: ApiOptions) {}

  async raw(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<RawResponse> {
    const headers: Record<string, string> = { authorization: authorizationHeader(this.options.key) };
    if (body !== undefined) headers['content-type'] = 'application/json';
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal,
          cache: 'no-store',
          credentials: 'omit',
        });
      } catch (err) {
        if (signal?.aborted) throw err;
        throw new ApiError(0, 'network', `Could not reach qrun (${(err as Error).message}).`);
      }
      const receivedAt = performance.now();
      const text = await res.text();
      if (res.ok) return { text, receivedAt };
      const error = toApiError(res.status, text);
      if (res.status === 429 && method === 'GET' && attempt < MAX_RATE_LIMIT_RETRIES) {
        const seconds = Math.max(1, Number(res.headers.get('retry-after')) || 1);
        this.options.onWaiting?.(`${error.message} Waiting ${seconds} s…`);
        await sleep(seconds * 1000, signal);
        this.options.onWaiting?.(null);
        continue;
      }
      if (res.status === 401) this.options.onUnauthorized();
      throw error;
    }
  }

  async json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const { text } = await this.raw(method, path, body, signal);
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  me(): Promise<Me> {
    return this.json<{ data: Me }>('GET', '/api/me').then((r) => r.data);
  }

  connectionTypes(): Promise<ConnectionType[]> {
    return this.json<{ data: ConnectionType[] }>('GET', '/api/connection_types').then((r) => r.data);
  }

  connections(): Promise<Connection[]> {
    return this.json<{ data: Connection[] }>('GET', '/api/connections').then((r) => r.data);
  }

  createConnection(input: {
    name: string;
    type: string;
    configuration: Record<string, ConfigValue>;
  }): Promise<Connection> {
    return this.json<{ data: Connection }>('POST', '/api/connections', input).then((r) => r.data);
  }

  updateConnection(
    id: string,
    input: { name: string; configuration: Record<string, ConfigValue> },
  ): Promise<Connection> {
    return this.json<{ data: Connection }>('PUT', `/api/connections/${id}`, input).then((r) => r.data);
  }

  async deleteConnection(id: string): Promise<void> {
    await this.raw('DELETE', `/api/connections/${id}`);
  }

  testConfiguration(type: string, configuration: Record<string, ConfigValue>): Promise<{ status: string }> {
    return this.json<{ data: { status: string } }>('POST', '/api/connections/test', {
      type,
      configuration,
    }).then((r) => r.data);
  }

  submit(connectionId: string, query: string): Promise<{ id: string }> {
    return this.json<{ data: { id: string } }>('POST', `/api/connections/${connectionId}/query`, {
      query,
    }).then((r) => r.data);
  }

  /** A query's status, or one page of its result (`path` from links.next), parsed without losing digits. */
  async query(path: string, signal?: AbortSignal): Promise<QueryResponse & { receivedAt: number }> {
    const { text, receivedAt } = await this.raw('GET', path, undefined, signal);
    return { ...parseExact<QueryResponse>(text), receivedAt };
  }

  async cancel(id: string): Promise<void> {
    await this.raw('POST', `/api/queries/${id}/cancel`);
  }

  history(path = '/api/queries?limit=50'): Promise<{ data: QuerySummary[]; links: { next: string | null } }> {
    return this.json('GET', path);
  }

  /** A download needs the key in a header, so it is fetched and handed to the browser as a blob. */
  async download(path: string): Promise<Blob> {
    const res = await fetch(path, {
      headers: { authorization: authorizationHeader(this.options.key) },
      cache: 'no-store',
      credentials: 'omit',
    });
    if (!res.ok) throw toApiError(res.status, await res.text());
    return res.blob();
  }
}

function toApiError(status: number, text: string): ApiError {
  try {
    const body = JSON.parse(text) as { message?: unknown; key?: unknown; metadata?: unknown };
    if (typeof body.message === 'string') {
      return new ApiError(
        status,
        typeof body.key === 'string' ? body.key : 'error',
        body.message,
        typeof body.metadata === 'object' && body.metadata !== null
          ? (body.metadata as Record<string, unknown>)
          : undefined,
      );
    }
  } catch {
    // not an error envelope
  }
  return new ApiError(status, 'error', `qrun answered HTTP ${status}.`);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A sentence for an error, explaining a 403 as the role's limit. */
export function explain(err: unknown, action?: string): string {
  if (err instanceof ApiError) {
    if (err.status === 403) {
      return `Your key's role may not ${action ?? 'do this'}: ${err.message} Ask an organization admin, or sign in with an admin or organization key.`;
    }
    return err.message;
  }
  if (err instanceof Error) return err.message;
  return String(err);
}
