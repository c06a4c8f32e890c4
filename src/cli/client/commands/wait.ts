import { num, sleep, type ApiClient } from '../api-client.js';
import type { QueryEnvelope } from '../output/result.js';
import type { ProgressLine } from '../progress.js';

const TERMINAL = new Set(['done', 'failed']);

/**
 * Long-polls GET /api/queries/{id}?wait=N until the query is done or failed, and returns that answer
 * (with the first page when done). With a progress line the polls are 1 s long, so the line shows rows
 * and pages as they come; without one, 30 s.
 */
export async function waitForQuery(
  api: ApiClient,
  id: string,
  options: { progress?: ProgressLine; signal?: AbortSignal },
): Promise<QueryEnvelope> {
  const waitSeconds = options.progress ? 1 : 30;
  for (;;) {
    const asked = Date.now();
    const body = await api.json<QueryEnvelope>('GET', `/api/queries/${id}?wait=${waitSeconds}`, {
      signal: options.signal,
    });
    if (TERMINAL.has(body.data.status)) return body;
    options.progress?.update(body.data);
    // A server that answers a long-poll at once (a capped wait) must not turn this into a busy loop.
    if (Date.now() - asked < 200) await sleep(250, options.signal);
  }
}

/** The database's message of a failed query, with its SQLSTATE and position when known. */
export function failureText(data: QueryEnvelope['data']): string {
  const details = (data.error_details ?? undefined) as
    { code?: string; sqlstate?: string | null; position?: unknown } | undefined;
  const extra: string[] = [];
  if (details?.sqlstate) extra.push(`SQLSTATE ${details.sqlstate}`);
  const position = num(details?.position);
  if (position !== undefined) extra.push(`at character ${position}`);
  return `${data.error ?? 'failed'}${extra.length ? ` (${extra.join(', ')})` : ''}`;
}
