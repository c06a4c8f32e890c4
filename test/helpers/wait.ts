/**
 * The one polling helper of the suite (vi.waitFor and expect.poll fit where the condition is an
 * assertion; this one is for conditions that return a value). It fails, naming what it waited for,
 * when the condition never comes; it never falls through.
 *
 * The deadline is only a failure bound for a condition that does not come: tests never assert on
 * elapsed time. A generous default keeps a loaded 2-core machine from failing a test that is merely slow.
 */
import type { Auth, RequestOptions, Response } from './server.js';

export interface WaitOptions {
  /** Give up after this long (default 15 s). */
  timeoutMs?: number;
  /** Between two checks (default 50 ms). */
  intervalMs?: number;
}

type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/**
 * Checks `condition` until it returns a truthy value, and returns that value. A condition that throws
 * ends the wait with its error at once (throw to say "this will never come", e.g. the process died).
 * On timeout it throws `timed out after N ms waiting for <what> (last: <value>)`; `what` may be a
 * function, to describe the state reached so far.
 */
export async function waitUntil<T>(
  what: string | (() => string),
  condition: () => T | Promise<T>,
  options: WaitOptions = {},
): Promise<Truthy<T>> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const intervalMs = options.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as Truthy<T>;
    if (Date.now() >= deadline) {
      const named = typeof what === 'function' ? what() : what;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${named} (last: ${show(value)})`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Resolves once every promise reaction that can run without I/O or timers has run: a macrotask
 * (setImmediate) runs only after the microtask queue is empty. For unit tests of pure promise
 * code, where "X has not settled" can then be asserted without waiting for any length of time.
 */
export function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Anything that sends API requests: a TestServer, or a base URL bound to helpers/server.ts's request(). */
export interface QueryApi {
  request<T = any>(method: string, path: string, options?: RequestOptions): Promise<Response<T>>;
}

const TERMINAL = new Set(['done', 'failed']);

/**
 * Reads the query until its status is terminal (done or failed) and returns that response:
 * long-polls of `waitSeconds` (default 30; 0 reads without waiting), `intervalMs` apart. Fails at once on
 * an answer other than 200, and after `timeoutMs` (default 45 s) naming the query and its last status.
 */
export async function waitForQueryEnd(
  api: QueryApi,
  auth: Auth,
  id: string,
  options: WaitOptions & { waitSeconds?: number } = {},
): Promise<Response> {
  const waitSeconds = options.waitSeconds ?? 30;
  let last = 'not read yet';
  return waitUntil(
    () => `query ${id} to end (its status: ${last})`,
    async () => {
      const r = await api.request(
        'GET',
        `/api/queries/${id}${waitSeconds > 0 ? `?wait=${waitSeconds}` : ''}`,
        {
          auth,
        },
      );
      if (r.status !== 200) throw new Error(`reading query ${id} answered ${r.status}: ${r.text}`);
      last = String(r.body?.data?.status);
      return TERMINAL.has(last) ? r : undefined;
    },
    // A pause between reads even after a long-poll: one that a capped key gets answered at once must not
    // turn into a busy loop.
    { timeoutMs: options.timeoutMs ?? 45_000, intervalMs: options.intervalMs ?? 50 },
  );
}

function show(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
