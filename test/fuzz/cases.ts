/**
 * One generated request ("case") for one operation of the OpenAPI document: a credential, path ids,
 * a query string, headers and a body, each valid, subtly wrong or plainly hostile.
 */
import fc from 'fast-check';
import {
  badPercent,
  contentTypes,
  fromSchema,
  latin1Text,
  malformedBodyText,
  mutated,
  nastyString,
  oversizedBody,
  pct,
  sometimes,
  sqlText,
  toJsonText,
  utf8AsLatin1,
  type JsonSchema,
} from './arbitraries.js';
import type { WireRequest } from './http.js';
import type { Credential, IdKind, World } from './world.js';

export interface Operation {
  method: string;
  /** The OpenAPI path template, e.g. /api/connections/{id}/query. */
  path: string;
  pathParams: string[];
  queryParams: string[];
  body?: JsonSchema;
  /** The documented 200 answer, when it is JSON. */
  okSchema?: JsonSchema;
  /** Served without an API key. */
  public: boolean;
}

/** Routes served without a key (the OpenAPI document does not mark them). */
const PUBLIC = new Set([
  '/healthz',
  '/readyz',
  '/metrics',
  '/api/openapi.json',
  '/api/docs',
  '/',
  '/assets/{file}',
]);
/** Routes left out of the OpenAPI document on purpose, fuzzed all the same. */
export const HIDDEN_PATHS = ['/api/openapi.json', '/api/docs'];
/** The web console's routes, hidden too; fuzzed when the console is built (else `/` is 503 by design). */
export const CONSOLE_PATHS = ['/', '/assets/{file}'];

interface OpenApiDoc {
  paths: Record<
    string,
    Record<
      string,
      {
        parameters?: { in: string; name: string }[];
        requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
        responses?: Record<string, { content?: Record<string, { schema?: JsonSchema }> }>;
      }
    >
  >;
}

/** Every operation of the document, in document order, then GET on each of `hidden`. */
export function operationsOf(doc: OpenApiDoc, hidden: string[] = HIDDEN_PATHS): Operation[] {
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const params = op.parameters ?? [];
      ops.push({
        method: method.toUpperCase(),
        path,
        pathParams: [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!),
        queryParams: params.filter((p) => p.in === 'query').map((p) => p.name),
        body: op.requestBody?.content?.['application/json']?.schema,
        okSchema: op.responses?.['200']?.content?.['application/json']?.schema,
        public: PUBLIC.has(path),
      });
    }
  }
  for (const path of hidden) {
    ops.push({
      method: 'GET',
      path,
      pathParams: [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!),
      queryParams: [],
      public: true,
    });
  }
  return ops;
}

/** What a path parameter names, from the segment before it. */
export function kindOf(path: string, param: string): IdKind | undefined {
  const segments = path.split('/');
  const before = segments[segments.indexOf(`{${param}}`) - 1];
  switch (before) {
    case 'organizations':
      return 'organization';
    case 'users':
      return 'user';
    case 'keys':
      return path.includes('/users/') ? 'userKey' : 'orgKey';
    case 'connections':
      return 'connection';
    case 'queries':
      return 'query';
    default:
      return undefined;
  }
}

/**
 * DELETE, and PUT on a user (which can take the admin role away), change who may do what: their target
 * (the last path id) is only ever a disposable object, never one the fuzzer's own credentials depend on.
 */
export const isDestructive = (op: Operation) =>
  op.method === 'DELETE' || (op.method === 'PUT' && op.path.endsWith('/users/{id}'));

export interface AuthChoice {
  label: string;
  /** Authorization header values (none, one, or a repeated header). */
  headers: string[];
  /** true: a working credential; false: must never get a 2xx on a non-public route; undefined: either. */
  valid: boolean | undefined;
  credential?: Credential;
}

export interface Case {
  op: Operation;
  method: string;
  auth: AuthChoice;
  path: string;
  query: string;
  /** Known ids that the path names, lower case. */
  pathIds: string[];
  /** The last id in the path, when it is a known one and the method is the operation's own. */
  target?: string;
  headers: [string, string][];
  body?: Buffer;
  /** For failure reports: the body as text, shortened. */
  bodyPreview?: string;
}

export function toWire(c: Case): WireRequest {
  const auth: [string, string][] = c.auth.headers.map((h) => ['Authorization', h]);
  return {
    method: c.method,
    target: c.query === '' ? c.path : `${c.path}?${c.query}`,
    headers: [...auth, ...c.headers],
    body: c.body,
  };
}

export function describeCase(c: Case): string {
  const clip = (s: string, n = 300) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);
  const headers = toWire(c)
    .headers.map(([n, v]) => `  ${n}: ${clip(JSON.stringify(v), 200)}`)
    .join('\n');
  return (
    `${c.method} ${clip(c.path)}${c.query === '' ? '' : `?${clip(c.query)}`}  [${c.auth.label}]\n${headers}` +
    (c.bodyPreview === undefined ? '' : `\n  body: ${clip(JSON.stringify(c.bodyPreview))}`)
  );
}

const basic = (userPass: string) => `Basic ${Buffer.from(userPass, 'latin1').toString('base64')}`;

const asIs = (c: Credential): AuthChoice => ({
  label: c.name,
  headers: [c.header],
  valid: true,
  credential: c,
});

function authArb(world: World): fc.Arbitrary<AuthChoice> {
  const byName = (n: Credential['name']) => world.credentials.find((c) => c.name === n)!;
  const admin = byName('admin');
  const adminKey = admin.header.slice('Bearer '.length);
  const orgKey = Buffer.from(byName('orgKey').header.slice('Basic '.length), 'base64')
    .toString()
    .slice(0, -1);
  const valid = (label: string, header: string, credential: Credential): AuthChoice => ({
    label,
    headers: [header],
    valid: true,
    credential,
  });
  const invalid = (label: string, ...headers: string[]): AuthChoice => ({ label, headers, valid: false });
  return fc.oneof(
    {
      arbitrary: fc.constantFrom(...world.credentials).map(asIs),
      weight: 12,
    },
    {
      arbitrary: fc.constantFrom(
        valid('admin, lower-case scheme', `bearer ${adminKey}`, admin),
        valid('admin, extra spaces', `Bearer   ${adminKey}  `, admin),
        valid(
          'orgKey, lower-case scheme',
          `basic ${Buffer.from(`${orgKey}:`).toString('base64')}`,
          byName('orgKey'),
        ),
        valid('orgKey, no colon', `Basic ${Buffer.from(orgKey).toString('base64')}`, byName('orgKey')),
      ),
      weight: 2,
    },
    {
      arbitrary: fc
        .oneof(latin1Text(20), fc.constant('p'.repeat(6000)))
        .map((pw) => valid('orgKey, Basic with a password', basic(`${orgKey}:${pw}`), byName('orgKey'))),
      weight: 1,
    },
    {
      arbitrary: fc.constantFrom(
        invalid('none'),
        invalid('Bearer alone', 'Bearer'),
        invalid('Bearer empty', 'Bearer '),
        invalid('Basic alone', 'Basic'),
        invalid('Basic empty', 'Basic '),
        invalid('wrong scheme', `Token ${adminKey}`),
        invalid('Digest', 'Digest username="a", realm="b"'),
        invalid('no space', `Bearer${adminKey}`),
        invalid('key + garbage', `Bearer ${adminKey}x`),
        invalid('key cut short', `Bearer ${adminKey.slice(0, -1)}`),
        invalid('org key as Bearer', `Bearer ${orgKey}`),
        invalid('user key as Basic', basic(`${adminKey}:`)),
        invalid('revoked', `Bearer ${world.revokedKey}`),
        invalid('unknown key', `Bearer qrun_u_${'A'.repeat(43)}`),
        invalid('unknown partner key', `Bearer qrun_p_${'b'.repeat(43)}`),
        invalid('unknown org key', basic(`qrun_o_${'c'.repeat(43)}:`)),
        invalid('non-ASCII', `Bearer ${utf8AsLatin1('ключ-🔑')}`),
        invalid('non-ASCII Basic', `Basic ${utf8AsLatin1('пароль')}`),
        invalid('long', `Bearer ${'a'.repeat(8000)}`),
        invalid('key with a NUL in Basic', basic(`${orgKey}\u0000:`)),
        { label: 'two headers', headers: [admin.header, 'Bearer nope'], valid: undefined },
        { label: 'two headers, bad first', headers: ['Bearer nope', admin.header], valid: undefined },
      ),
      weight: 5,
    },
    {
      arbitrary: latin1Text(60).map((g) => invalid('garbage Basic', `Basic ${g}`)),
      weight: 1,
    },
    {
      arbitrary: latin1Text(60).map((g) => invalid('garbage', g)),
      weight: 1,
    },
  );
}

/** One path segment for `param`: a known id (often), another form of it, or anything else. */
function segmentArb(world: World, op: Operation, param: string, isTarget: boolean): fc.Arbitrary<string> {
  const kind = kindOf(op.path, param);
  // Read at generation time, not now: replenish() replaces the disposable ids that requests delete.
  const pool = (): string[] =>
    kind
      ? isTarget && isDestructive(op)
        ? world.ids[kind].disposable
        : world.ids[kind].all
      : Object.values(world.ids).flatMap((p) =>
          p.all.filter((id) => !isDestructive(op) || p.disposable.includes(id)),
        );
  const choices: fc.WeightedArbitrary<string>[] = [
    { arbitrary: fc.uuid(), weight: 2 },
    { arbitrary: nastyString.map(pct), weight: 2 },
    { arbitrary: badPercent, weight: 1 },
    {
      arbitrary: fc.constantFrom(
        '%2F',
        '..',
        '%2e%2e',
        '.',
        'null',
        '0',
        '-1',
        '1e20',
        '%20',
        'x'.repeat(5000),
        '00000000-0000-0000-0000-000000000000',
        'ffffffff-ffff-ffff-ffff-ffffffffffff',
        '{id}',
        '__proto__',
        'constructor',
        '%7B6f1c0000-0000-4000-8000-000000000000%7D',
        '6f1c00000000400080000000000000000',
      ),
      weight: 1,
    },
  ];
  if (pool().length > 0) {
    const known = fc.nat().map((i) => {
      const ids = pool();
      return ids[i % ids.length] ?? '00000000-0000-4000-8000-000000000000';
    });
    choices.push(
      { arbitrary: known, weight: 10 },
      { arbitrary: known.map((id) => id.toUpperCase()), weight: 1 },
      {
        arbitrary: fc
          .tuple(known, fc.constantFrom('%00', '%2F', '/', '%20', '%0A', 'x', '/..'))
          .map(([id, tail]) => `${id}${tail}`),
        weight: 1,
      },
    );
  }
  return fc.oneof(...choices);
}

/** A value for a query parameter, by its name. */
function queryValueArb(world: World, name: string): fc.Arbitrary<string> {
  const numbers = fc.constantFrom(
    '0',
    '1',
    '2',
    '60',
    '61',
    '200',
    '201',
    '-1',
    '1.5',
    '1e3',
    'abc',
    '',
    ' 1',
    '9'.repeat(30),
  );
  switch (name) {
    case 'page':
      return fc.oneof(
        fc.constant(world.pageToken),
        fc
          .tuple(fc.constant(world.pageToken), fc.nat(), fc.constantFrom('A', '_', '-', '=', '%'))
          .map(([t, i, ch]) => `${t.slice(0, i % t.length)}${ch}${t.slice((i % t.length) + 1)}`),
        fc.base64String({ maxLength: 60 }),
        fc.constantFrom('', 'MQ==', 'MQ', 'x'.repeat(10_000)),
        nastyString,
      );
    case 'wait':
    case 'limit':
      return fc.oneof({ arbitrary: numbers, weight: 3 }, nastyString);
    case 'cursor':
      return fc.oneof(
        fc
          .tuple(fc.date({ noInvalidDate: true }), fc.oneof(fc.uuid(), fc.stringMatching(/^[0-9a-f-]{36}$/)))
          .map(([d, id]) => Buffer.from(`${d.toISOString()}|${id}`).toString('base64url')),
        fc.base64String({ maxLength: 80 }),
        nastyString,
      );
    case 'query':
      return sqlText.filter((s) => s.length < 4000);
    case 'format':
      return fc.oneof(
        fc.constantFrom('csv', 'tsv', 'ndjson', 'json', 'parquet', 'arrow', 'xml', 'CSV', ''),
        nastyString,
      );
    default:
      return fc.oneof(numbers, nastyString);
  }
}

/** A plausible value for a documented query parameter, for well-formed cases. */
function plausibleValueArb(world: World, name: string): fc.Arbitrary<string> {
  switch (name) {
    case 'page':
      return fc.constant(world.pageToken);
    case 'wait':
      // Every known query is finished, so a wait answers at once.
      return fc.constantFrom('0', '1', '60');
    case 'limit':
      return fc.constantFrom('1', '2', '50', '200');
    case 'query':
      return sqlText.filter((q) => q.length < 4000);
    case 'format':
      return fc.constantFrom('csv', 'tsv', 'ndjson', 'json', 'parquet', 'arrow');
    default:
      return queryValueArb(world, name);
  }
}

function queryStringArb(world: World, op: Operation): fc.Arbitrary<string> {
  const names = fc.oneof(
    ...(op.queryParams.length > 0 ? [{ arbitrary: fc.constantFrom(...op.queryParams), weight: 4 }] : []),
    {
      arbitrary: fc.constantFrom(
        'page',
        'wait',
        'limit',
        'cursor',
        'query',
        'format',
        '__proto__',
        'constructor',
        'toString',
        'a[b]',
        'a[]',
        '',
        ' ',
      ),
      weight: 2,
    },
    { arbitrary: fc.string({ maxLength: 8 }), weight: 1 },
  );
  const pair = names.chain((name) =>
    fc.oneof(
      { arbitrary: queryValueArb(world, name).map((v) => `${pct(name)}=${pct(v)}`), weight: 8 },
      { arbitrary: badPercent.map((b) => `${pct(name)}=${b}`), weight: 1 },
      { arbitrary: fc.constant(pct(name)), weight: 1 },
    ),
  );
  return fc.oneof(
    { arbitrary: fc.constant(''), weight: 3 },
    { arbitrary: fc.array(pair, { minLength: 1, maxLength: 4 }).map((ps) => ps.join('&')), weight: 6 },
    {
      arbitrary: fc.constantFrom('&', '&&', '=', '?', '==&=', `a=${'x'.repeat(12_000)}`, 'a=1&'.repeat(2000)),
      weight: 1,
    },
  );
}

/** The body and the Content-Type it travels with. */
function bodyArb(
  world: World,
  op: Operation,
): fc.Arbitrary<{ text?: string; bytes?: Buffer; type?: string }> {
  const ctx = { connectionTypes: world.connectionTypes };
  const json = (arb: fc.Arbitrary<unknown>) => arb.map(toJsonText);
  const texts: fc.WeightedArbitrary<string>[] = [
    // Now and then a body over the size limit: rare, as each is 2 MiB.
    { arbitrary: fc.oneof({ arbitrary: malformedBodyText, weight: 30 }, oversizedBody), weight: 3 },
    { arbitrary: json(fc.jsonValue({ maxDepth: 4 })), weight: 2 },
  ];
  if (op.body) {
    const schema = op.body;
    texts.push(
      { arbitrary: json(fromSchema(schema, ctx)), weight: 8 },
      { arbitrary: json(mutated(schema, ctx)), weight: 8 },
      {
        arbitrary: fc
          .tuple(json(fromSchema(schema, ctx)), fc.nat())
          .map(([t, cut]) => t.slice(0, t.length > 1 ? cut % (t.length - 1) : 0)),
        weight: 1,
      },
    );
  }
  const textArb = fc.oneof(...texts);
  const typed = fc.oneof(
    { arbitrary: fc.constant('application/json'), weight: 8 },
    { arbitrary: contentTypes, weight: 3 },
    { arbitrary: fc.constant(undefined), weight: 1 },
  );
  return fc.oneof(
    { arbitrary: fc.constant({}), weight: op.body ? 2 : 10 },
    { arbitrary: fc.tuple(textArb, typed).map(([text, type]) => ({ text, type })), weight: op.body ? 14 : 3 },
    // Empty bodies that say JSON, or say nothing: with and without a Content-Length of 0.
    {
      arbitrary: fc.constantFrom(
        { text: '', type: 'application/json' },
        { text: '' },
        { type: 'application/json' },
      ),
      weight: 2,
    },
    {
      arbitrary: fc
        .tuple(fc.uint8Array({ maxLength: 300 }), fc.oneof(fc.constant('application/json'), contentTypes))
        .map(([b, type]) => ({ bytes: Buffer.from(b), type })),
      weight: 1,
    },
  );
}

function extraHeadersArb(): fc.Arbitrary<[string, string][]> {
  const opt = sometimes;
  return fc
    .record({
      idempotency: opt(
        fc.oneof(
          { arbitrary: fc.constantFrom('fuzz-key-0001', 'fuzz-key-0002', 'fuzz-key-0003'), weight: 3 },
          { arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{8,64}$/), weight: 2 },
          {
            arbitrary: fc.constantFrom(
              '',
              'short',
              'has space in it',
              'x'.repeat(256),
              'y'.repeat(5000),
              utf8AsLatin1('clé-é-é-é-é'),
              'a/b/c/d/e/f',
              ',,,,,,,,',
            ),
            weight: 2,
          },
          { arbitrary: latin1Text(30), weight: 1 },
        ),
        2,
      ),
      requestId: opt(
        fc.oneof(
          fc.constantFrom(
            'fuzz-req-1',
            'x'.repeat(64),
            'x'.repeat(65),
            '',
            'a b',
            '../../x',
            utf8AsLatin1('ид'),
          ),
          latin1Text(80),
        ),
        4,
      ),
      version: opt(
        fc.oneof(
          fc.constantFrom('2025-09-18', '2024-01-01', '', 'latest', '9999-99-99', 'x'.repeat(3000)),
          latin1Text(20),
        ),
        4,
      ),
      accept: opt(
        fc.constantFrom('*/*', 'application/json', 'text/html', 'application/xml', 'text/event-stream', ''),
        5,
      ),
      expect: opt(fc.constantFrom('100-continue', 'something-else'), 30),
      other: opt(fc.tuple(fc.stringMatching(/^x-[a-z0-9-]{1,20}$/), latin1Text(100)), 4),
      encoding: opt(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'gzip, gzip', 'x-unknown'), 20),
    })
    .map((h) => {
      const out: [string, string][] = [];
      if (h.idempotency !== undefined) out.push(['Idempotency-Key', h.idempotency]);
      if (h.requestId !== undefined) out.push(['X-Request-Id', h.requestId]);
      if (h.version !== undefined) out.push(['X-Polytomic-Version', h.version]);
      if (h.accept !== undefined) out.push(['Accept', h.accept]);
      if (h.expect !== undefined) out.push(['Expect', h.expect]);
      if (h.other !== undefined) out.push(h.other);
      if (h.encoding !== undefined) out.push(['Content-Encoding', h.encoding]);
      return out;
    });
}

/** Methods a route does not have (never DELETE or PUT: those are destructive when they exist). */
const OTHER_METHODS = ['GET', 'POST', 'PATCH', 'OPTIONS', 'HEAD', 'PROPFIND', 'TRACE'];

/** The parts a case is made of, before they are put together. */
interface Parts {
  method: string;
  auth: AuthChoice;
  segments: (readonly [string, string])[];
  query: string;
  body: { text?: string; bytes?: Buffer; type?: string };
  headers: [string, string][];
}

/**
 * Cases of two kinds: hostile ones (any part may be broken) and well-formed ones (a working credential,
 * known ids, documented parameters, a body that follows the schema), which get past parsing and
 * validation to the handlers' own logic: permissions, ownership, idempotency, the services.
 */
export function caseArb(world: World, op: Operation): fc.Arbitrary<Case> {
  const target = op.pathParams.at(-1);
  const hostile: fc.Arbitrary<Parts> = fc.record({
    method: fc.oneof({ arbitrary: fc.constant(op.method), weight: 15 }, fc.constantFrom(...OTHER_METHODS)),
    auth: authArb(world),
    segments: fc.tuple(
      ...op.pathParams.map((p) => segmentArb(world, op, p, p === target).map((v) => [p, v] as const)),
    ),
    query: queryStringArb(world, op),
    body: bodyArb(world, op),
    headers: extraHeadersArb(),
  });
  const wellFormed: fc.Arbitrary<Parts> = fc.record({
    method: fc.constant(op.method),
    auth: fc.constantFrom(...world.credentials).map(asIs),
    segments: fc.tuple(
      ...op.pathParams.map((p) => {
        const kind = kindOf(op.path, p);
        const pool = kind ? world.ids[kind] : undefined;
        const ids = () => (pool ? (p === target && isDestructive(op) ? pool.disposable : pool.all) : []);
        return fc
          .oneof(
            {
              arbitrary: fc
                .nat()
                .map((i) => ids()[i % Math.max(1, ids().length)] ?? '00000000-0000-4000-8000-000000000000'),
              weight: 9,
            },
            fc.uuid(),
          )
          .map((v) => [p, v] as const);
      }),
    ),
    query: fc
      .subarray(op.queryParams)
      .chain((names) =>
        fc.tuple(...names.map((n) => plausibleValueArb(world, n).map((v) => `${n}=${pct(v)}`))),
      )
      .map((pairs) => pairs.join('&')),
    body: op.body
      ? fromSchema(op.body, { connectionTypes: world.connectionTypes }).map((b) => ({
          text: toJsonText(b),
          type: 'application/json',
        }))
      : fc.constant({}),
    headers: sometimes(
      fc.constantFrom('fuzz-key-0001', 'fuzz-key-0002', 'fuzz-key-0003', 'fuzz-key-0004'),
      3,
    ).map((k): [string, string][] => (k === undefined ? [] : [['Idempotency-Key', k]])),
  });
  return fc
    .oneof({ arbitrary: hostile, weight: 7 }, { arbitrary: wellFormed, weight: 3 })
    .map(({ method, auth, segments: segs, query, body, headers }: Parts) => {
      let path = op.path;
      const known = new Set(world.owners.keys());
      const pathIds: string[] = [];
      for (const [name, value] of segs) {
        path = path.replace(`{${name}}`, value);
        if (known.has(value.toLowerCase())) pathIds.push(value.toLowerCase());
      }
      const last = segs.at(-1)?.[1].toLowerCase();
      const noBody = method === 'HEAD' || method === 'TRACE' || method === 'GET';
      const all: [string, string][] = [...headers];
      let bytes: Buffer | undefined;
      let preview: string | undefined;
      if (!noBody || method === 'GET') {
        if (body.type !== undefined) all.push(['Content-Type', body.type]);
        if (body.text !== undefined) {
          bytes = Buffer.from(body.text, 'utf8');
          preview = body.text;
        } else if (body.bytes !== undefined) {
          bytes = body.bytes;
          preview = `<${bytes.length} bytes: ${bytes.toString('hex').slice(0, 80)}>`;
        }
      }
      if (noBody && method !== 'GET') bytes = undefined;
      const c: Case = {
        op,
        method,
        auth,
        path,
        query,
        pathIds,
        target: method === op.method && last && known.has(last) ? last : undefined,
        headers: all,
        body: bytes,
        bodyPreview: preview,
      };
      // fast-check prints counterexamples with this, instead of a dump with megabyte bodies.
      return Object.assign(c, { [fc.toStringMethod]: () => describeCase(c) });
    });
}
