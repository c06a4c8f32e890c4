/**
 * What every answer must be, whatever was sent: never 5xx; a 4xx carries the contract's error envelope
 * and no stack trace; a 2xx is the documented JSON envelope (or 204 with no body, or the content type of
 * a route that serves something else by design); a credential that does not work, or one of another
 * organization, never gets a 2xx; and no answer shows a secret the fuzzer knows.
 */
import type { Case, Operation } from './cases.js';
import type { WireResponse } from './http.js';
import type { World } from './world.js';

const ENVELOPE_KEYS = new Set(['status', 'message', 'key', 'metadata']);
const SNAKE_CASE = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;
/** A V8 stack frame, a source path or a module path: none belongs in an answer. */
const STACK_TRACE = /\n\s+at\s|\bat .+\.[cm]?[jt]s:\d+|node_modules\/|\/src\/[a-z-]+\//;

/** Routes that answer with something other than the `{"data": ...}` envelope, and what. */
const NON_ENVELOPE: Record<string, (type: string, body: Buffer) => string | undefined> = {
  '/metrics': (type) =>
    /^(text\/plain|application\/openmetrics-text)/.test(type) ? undefined : `metrics as ${type}`,
  '/api/docs': (type) => (type.startsWith('text/html') ? undefined : `docs page as ${type}`),
  '/healthz': (type, body) =>
    type.startsWith('application/json') && 'status' in parse(body) ? undefined : 'no status',
  '/readyz': (type, body) =>
    type.startsWith('application/json') && 'status' in parse(body) ? undefined : 'no status',
  '/': (type) => (type.startsWith('text/html') ? undefined : `console page as ${type}`),
  // Scripts, styles, fonts: any type the file has.
  '/assets/{file}': () => undefined,
  '/api/openapi.json': (type, body) =>
    type.startsWith('application/json') && 'openapi' in parse(body) ? undefined : 'not an OpenAPI document',
};

function parse(body: Buffer): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The envelope's problems, for any 4xx (also those of the raw-socket cases). */
export function envelopeProblems(status: number, type: string, body: Buffer): string[] {
  const problems: string[] = [];
  if (!type.startsWith('application/json')) problems.push(`${status} with Content-Type "${type}", not JSON`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return [...problems, `${status} whose body is not JSON`];
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    return [...problems, 'body is not an object'];
  const e = parsed as Record<string, unknown>;
  const extra = Object.keys(e).filter((k) => !ENVELOPE_KEYS.has(k));
  if (extra.length > 0) problems.push(`envelope has extra fields ${extra.join(', ')}`);
  if (e.status !== status) problems.push(`envelope status ${String(e.status)} ≠ HTTP ${status}`);
  if (typeof e.message !== 'string' || e.message.trim() === '')
    problems.push('envelope message is not a sentence');
  if (typeof e.key !== 'string' || !SNAKE_CASE.test(e.key))
    problems.push(`envelope key ${JSON.stringify(e.key)} is not snake_case`);
  if (
    e.metadata !== undefined &&
    (e.metadata === null || typeof e.metadata !== 'object' || Array.isArray(e.metadata))
  ) {
    problems.push('envelope metadata is not an object');
  }
  if (STACK_TRACE.test(body.toString('utf8'))) problems.push('a stack trace or source path in the answer');
  return problems;
}

export function responseProblems(
  c: Case,
  res: WireResponse,
  world: World,
  ops: Operation[],
  secrets: string[],
): string[] {
  const problems: string[] = [];
  const { status } = res;
  const type = String(res.headers['content-type'] ?? '');
  const text = res.body.toString('utf8');

  if (status >= 500) problems.push(`server error ${status}`);
  else if (status < 200 || (status >= 300 && status < 400)) problems.push(`unexpected status ${status}`);

  for (const secret of secrets) if (text.includes(secret)) problems.push('the answer contains a secret');

  if (c.method === 'HEAD') {
    if (res.body.length > 0) problems.push('HEAD answered with a body');
    return problems;
  }

  if (status >= 400 && status < 500) {
    problems.push(...envelopeProblems(status, type, res.body));
    if (status === 405 && !res.headers.allow) problems.push('405 without Allow');
    if (status === 429 && !res.headers['retry-after']) problems.push('429 without Retry-After');
    return problems;
  }
  if (status < 200 || status >= 300) return problems;

  // A 2xx: the operation that actually served it (the method may not be the case's operation's).
  const op = ops.find((o) => o.path === c.op.path && o.method === c.method);
  if (!op) {
    problems.push(`${status} for ${c.method}, which ${c.op.path} does not have`);
    return problems;
  }
  if (!op.public && c.auth.valid === false)
    problems.push(`${status} for a credential that does not work (${c.auth.label})`);
  const who = c.auth.credential;
  if (who && who.name !== 'partner') {
    for (const id of c.pathIds) {
      const owned = world.owners.get(id);
      if (owned && owned.organizationId !== who.organizationId) {
        problems.push(`${status} for ${who.name} on ${id}, an object of another organization`);
      } else if (owned?.owner && owned.owner !== who.name) {
        problems.push(`${status} for ${who.name} on query ${id}, which ${owned.owner} submitted`);
      }
    }
  }

  if (status === 204) {
    if (res.body.length > 0) problems.push('204 with a body');
    return problems;
  }
  const special = NON_ENVELOPE[op.path];
  if (special) {
    const why = special(type, res.body);
    if (why) problems.push(why);
    return problems;
  }
  if (op.okSchema?.properties?.data || op.okSchema?.required?.includes('data')) {
    if (!type.startsWith('application/json')) problems.push(`${status} with Content-Type "${type}"`);
    else if (!('data' in parse(res.body))) problems.push(`${status} without "data"`);
  }
  return problems;
}
