/**
 * Building blocks of generated requests: hostile strings and numbers, JSON bodies shaped by a JSON Schema
 * (valid, or with one field broken), malformed JSON text, header values and URL pieces.
 *
 * Everything a generated request can make qrun connect to stays on this machine: host names come from a
 * fixed list of loopback spellings (no DNS look-ups, no other address), ports are the engine's own or
 * closed ones (a MySQL client talking to a PostgreSQL port would wait for a greeting until the test
 * timeout), and SQL is random text or a few harmless statements.
 */
import fc from 'fast-check';
import type { ConnectionType } from './world.js';

/** A minimal JSON Schema, as @fastify/swagger writes the request bodies into the OpenAPI document. */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
}

/** `arb`'s value once in `oneIn` cases, else undefined. */
export const sometimes = <T>(arb: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | undefined> =>
  fc.oneof({ arbitrary: fc.constant(undefined), weight: oneIn - 1 }, { arbitrary: arb, weight: 1 });

/** `"@@RAW:<text>@@"` inside JSON.stringify's output is replaced by <text>: numbers JSON.stringify can't write. */
export const raw = (text: string) => `@@RAW:${text}@@`;
export const toJsonText = (value: unknown): string =>
  JSON.stringify(value).replace(/"@@RAW:(.*?)@@"/g, (_m, t: string) => t.replace(/\\"/g, '"'));

/** Percent-encodes the UTF-8 bytes of `s` (lone surrogates become U+FFFD, as a client's encoder would). */
export function pct(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Percent sequences that are not valid (or not valid UTF-8), for paths and query strings. */
export const badPercent = fc.constantFrom(
  '%',
  '%%',
  '%zz',
  '%E0%A4%A',
  '%E0%A4',
  '%C0%AF',
  '%ED%A0%80',
  '%FF%FE',
  '%u0041',
  '%00',
  '%2',
  'a%2Fb',
  '%252F',
);

/** Strings that break naive code: control characters, line separators, lone surrogates, BOM, huge. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }), weight: 4 },
  { arbitrary: fc.string({ maxLength: 40 }), weight: 2 },
  {
    arbitrary: fc.constantFrom(
      '',
      ' ',
      '\t',
      '\u0000',
      'a\u0000b',
      '\u2028\u2029',
      '\ud800',
      'x\udc00y',
      '\udbff\udfff',
      '\ufeff',
      '\u202e\u0635',
      'e\u0301',
      '💥',
      '%00',
      '../../etc/passwd',
      '__proto__',
      'constructor',
      'null',
      'undefined',
      'NaN',
      '1e20',
      '-1',
      '${7*7}',
      '{{7*7}}',
      "' or 1=1 --",
      '<script>alert(1)</script>',
      '\\',
      '"',
      '********',
    ),
    weight: 4,
  },
  { arbitrary: fc.constantFrom('x'.repeat(256), 'y'.repeat(70_000), 'é'.repeat(100_000)), weight: 1 },
);

/** JSON values that a schema field does not expect: wrong types, extremes, deep nesting. */
export const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  {
    arbitrary: fc.constantFrom<unknown>(
      1e20,
      -1,
      0,
      1.5,
      2 ** 31,
      -(2 ** 31) - 1,
      2 ** 53 + 2,
      1e308,
      -1e308,
      Number.MAX_SAFE_INTEGER,
      Number.MIN_VALUE,
      true,
      false,
      null,
      [],
      {},
      [null],
      { a: { b: { c: [] } } },
      raw('1e400'),
      raw('-1e400'),
      raw('1e-400'),
      raw('123456789012345678901234567890'),
      raw('9007199254740993'),
      raw('1E+20'),
      raw('-0'),
      raw('0.0000000000000000000001'),
      raw(`${'['.repeat(2000)}${']'.repeat(2000)}`),
    ),
    weight: 6,
  },
  { arbitrary: nastyString, weight: 4 },
  { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 2 },
  { arbitrary: fc.integer(), weight: 1 },
  { arbitrary: fc.double(), weight: 1 },
);

/** Bodies that are not one JSON document, or one that parsers trip over. */
export const malformedBodyText: fc.Arbitrary<string> = fc.constantFrom(
  '',
  ' ',
  '\n',
  'null',
  'true',
  '0',
  '-1',
  '"x"',
  '[]',
  '{}',
  '{',
  '}',
  '[',
  '{"a":',
  '{"query":"select 1"',
  '[1,2',
  'undefined',
  'NaN',
  "{'a':1}",
  '{"a":1,}',
  '{"a":1}{"b":2}',
  '{"a":1} x',
  '\ufeff{}',
  '{"__proto__":{"admin":true}}',
  '{"constructor":{"prototype":{"admin":true}}}',
  '{"a":{"__proto__":{"x":1}}}',
  '{"name":"a","name":1}',
  '{"a":"\\ud800"}',
  '{"a":"\\u0000"}',
  '{"query":"\\u0000"}',
  '{"query":"\\ud800"}',
  '{"a":1e400}',
  '{"max_rows":1e400}',
  '{"a":"\u2028"}',
  '{"a":"\\x41"}',
  '{"a":01}',
  '{"a":.5}',
  '{"a":+1}',
  '{"a":Infinity}',
  '{"a":"\t"}',
  '\u0000',
  `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
  `${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`,
  `{"query":"${'x'.repeat(1_100_000)}"}`,
);

/** Over the default 2 MiB body limit: 413 expected. Built once, lazily, as it is large. */
let oversized: string | undefined;
export const oversizedBody = fc.constant(0).map(() => (oversized ??= `{"query":"${'x'.repeat(2_200_000)}"}`));

/** Header values as node:http sends them: latin1, no control characters but tab. */
export const latin1Text = (maxLength = 40): fc.Arbitrary<string> =>
  fc.string({
    unit: fc
      .integer({ min: 0x20, max: 0xff })
      .filter((c) => c !== 0x7f)
      .map((c) => String.fromCharCode(c)),
    maxLength,
  });

/** UTF-8 bytes of `s` as a latin1 string: how non-ASCII travels in a header. */
export const utf8AsLatin1 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

export const contentTypes = fc.constantFrom(
  'application/json; charset=utf-8',
  'application/json;charset=UTF-8',
  'application/json; charset="utf-8"',
  'application/json; charset=latin1',
  'application/json; charset=utf-16le',
  'application/json; charset=',
  'application/json; boundary=x',
  'Application/JSON',
  'application/json ',
  'application/jsonx',
  'application/vnd.api+json',
  'application/problem+json',
  'text/json',
  'text/plain',
  'text/plain; charset=utf-8',
  'text/html',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=----fuzz',
  'multipart/form-data',
  'application/octet-stream',
  'application/xml',
  '*/*',
  '',
  ';',
  'application/',
  '/json',
);

/** SQL a submit may carry: harmless statements that succeed or fail fast, random text, and edge cases. */
export const sqlText: fc.Arbitrary<string> = fc.oneof(
  {
    arbitrary: fc.constantFrom(
      'select 1',
      'select 1 as a, 2 as a',
      'select $1::text as v',
      'select ? as v',
      'select n from generate_series(1, 1200) n',
      'select 1/0',
      'select',
      'select null::int, 1.5::numeric, now()',
      "select 'a\u2028b' as s",
      'select 1; select 2',
      '   ',
      '-- nothing',
    ),
    weight: 4,
  },
  { arbitrary: nastyString, weight: 3 },
  { arbitrary: fc.constantFrom('x'.repeat(1_048_577)), weight: 1 },
);

export const emailText: fc.Arbitrary<string> = fc.oneof(
  fc.emailAddress().map((e) => `fuzz-${e}`),
  fc.constantFrom(
    'a@b',
    '@',
    'a@',
    '@b',
    'no-at',
    ' a@b ',
    'A@B',
    'a@b@c',
    `${'x'.repeat(320)}@b`,
    'a\u0000@b',
  ),
  nastyString,
);

export const nameText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ minLength: 1, maxLength: 30 }).map((n) => `fuzz ${n}`),
  fc.constantFrom('x'.repeat(255), 'x'.repeat(256), ' ', '\u0000', 'default', 'fuzz-other'),
  nastyString,
);

/** Host names: loopback spellings (mostly) and syntax the service must refuse, never another address. */
const hostText = fc.oneof(
  {
    arbitrary: fc.constantFrom(
      '127.0.0.1',
      'localhost',
      '::1',
      '[::1]',
      '127.1',
      '0x7f.0.0.1',
      '2130706433',
      '::ffff:127.0.0.1',
    ),
    weight: 4,
  },
  fc.constantFrom(
    '127.0.0.2',
    '',
    ' ',
    '/tmp',
    'user@127.0.0.1',
    '127.0.0.1\u0000',
    '127.0.0.1 ',
    '127.0.0.1:5432',
    'x'.repeat(300),
  ),
);

/** Ports: the engine's own (so valid configurations connect) or nothing listening; never another service's. */
const portFor = (engineDefault: unknown) =>
  fc.oneof(
    { arbitrary: fc.constant(typeof engineDefault === 'number' ? engineDefault : 5432), weight: 4 },
    {
      arbitrary: fc.constantFrom<unknown>(1, 9, 0, 65536, -1, 1e20, 1.5, '5432', null, raw('1e400')),
      weight: 2,
    },
  );

const pathText = fc.oneof(
  { arbitrary: fc.constantFrom('fuzz.db', 'fuzz.duckdb', 'new.duckdb'), weight: 4 },
  fc.constantFrom(
    'sub/dir/x.db',
    '../escape.db',
    '../../etc/passwd',
    '/etc/passwd',
    ':memory:',
    '',
    '.',
    'a/../../b',
    'file:x.db?mode=rwc',
    'x'.repeat(5000),
    'nul\u0000.db',
    'C:\\windows',
  ),
  nastyString,
);

/** A value for one configuration field, by its name and type as GET /api/connection_types lists them. */
function configValue(field: ConnectionType['fields'][number], type: ConnectionType): fc.Arbitrary<unknown> {
  const n = field.name.toLowerCase();
  if (n.includes('host')) return hostText;
  if (n === 'port') return portFor(field.default);
  if (n === 'path') return pathText;
  if (n === 'database' || n === 'dbname')
    return fc.oneof(fc.constant(type.id === 'mysql' ? 'test' : 'test'), nastyString);
  if (n === 'username' || n === 'account') return fc.oneof(fc.constantFrom('postgres', 'root'), nastyString);
  if (field.secret) return fc.oneof(fc.constantFrom('', 'secret', '********'), nastyString);
  if (field.type === 'boolean')
    return fc.oneof({ arbitrary: fc.boolean(), weight: 4 }, fc.constantFrom('true', 1, null));
  if (field.type === 'integer') return fc.oneof(fc.integer({ min: 0, max: 100 }), nastyValue);
  return nastyString;
}

/**
 * A configuration for `type`: its listed fields (required ones usually present), now and then an unknown
 * or aliased field, or one with a value of the wrong type.
 */
export function configurationFor(type: ConnectionType): fc.Arbitrary<Record<string, unknown>> {
  const fields = type.fields.map((f) =>
    fc
      .tuple(fc.integer({ min: 0, max: 9 }), configValue(f, type))
      .map(([roll, v]) => [f.name, v, roll < (f.required ? 9 : 5)] as const),
  );
  return fc
    .tuple(
      fc.tuple(...fields),
      sometimes(
        fc.tuple(
          fc.constantFrom('dbname', 'account', 'passwd', 'extra', 'Hostname', '__proto__'),
          nastyValue,
        ),
        5,
      ),
      sometimes(fc.tuple(fc.constantFrom(...type.fields.map((f) => f.name)), nastyValue), 5),
    )
    .map(([values, extra, broken]) => {
      // JSON.parse makes "__proto__" an own key, as a client's JSON would.
      const out = JSON.parse('{}') as Record<string, unknown>;
      for (const [name, v, present] of values) if (present) out[name] = v;
      if (extra) Object.defineProperty(out, extra[0], { value: extra[1], enumerable: true, writable: true });
      if (broken) out[broken[0]] = broken[1];
      return out;
    });
}

export interface SchemaContext {
  connectionTypes: ConnectionType[];
}

/** Values that satisfy `schema` (as far as its own constraints go), with field-name knowledge for realism. */
export function fromSchema(
  schema: JsonSchema,
  ctx: SchemaContext,
  name = '',
  depth = 0,
): fc.Arbitrary<unknown> {
  switch (name) {
    case 'query':
      return sqlText;
    case 'email':
      return fc.oneof(
        { arbitrary: fc.emailAddress().map((e) => `fuzz-${e}`), weight: 4 },
        fc.constant(`${'x'.repeat(Math.max(1, (schema.maxLength ?? 320) - 12))}@example.com`),
        emailText,
      );
    case 'name':
      return fc.oneof(
        { arbitrary: fc.string({ minLength: 1, maxLength: 30 }).map((n) => `fuzz ${n}`), weight: 4 },
        fc.constantFrom('x'.repeat(schema.maxLength ?? 255), `fuzz ${'é'.repeat(100)}`),
        nameText,
      );
    case 'validate':
      // Mostly no connection test: each one that passes opens a database connection.
      return fc.oneof({ arbitrary: fc.constant(false), weight: 3 }, fc.constant(true));
    case 'parameters':
      return fc.array(
        fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.boolean(), fc.constant(null), nastyValue),
        {
          maxLength: 4,
        },
      );
  }
  const anyOf = schema.anyOf ?? schema.oneOf;
  if (anyOf) return fc.oneof(...anyOf.map((s) => fromSchema(s, ctx, name, depth + 1)));
  if (schema.enum) return fc.constantFrom(...schema.enum);
  if (schema.const !== undefined) return fc.constant(schema.const);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'string': {
      const short = fc.string({
        minLength: schema.minLength ?? 0,
        maxLength: Math.min(schema.maxLength ?? 30, 30),
      });
      // Now and then as long as the schema allows: the bound of the store's column, if it has one.
      const longest = schema.maxLength === undefined ? [] : [fc.constant('x'.repeat(schema.maxLength))];
      return fc.oneof({ arbitrary: short, weight: 5 }, ...longest, nastyString);
    }
    case 'integer': {
      const min = Math.max(schema.minimum ?? -1000, -(2 ** 31));
      const max = Math.min(schema.maximum ?? 1_000_000, 2 ** 31 - 1);
      // Mostly small values (a timeout or a row limit a server accepts), sometimes anywhere in range.
      return fc.oneof(
        { arbitrary: fc.integer({ min, max: Math.min(max, min + 100) }), weight: 4 },
        fc.integer({ min, max }),
      );
    }
    case 'number':
      return fc.double({ noNaN: true, noDefaultInfinity: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(
        schema.items ? fromSchema(schema.items, ctx, '', depth + 1) : fc.jsonValue({ maxDepth: 2 }),
        {
          maxLength: Math.min(schema.maxItems ?? 4, 4),
        },
      );
    case 'object':
      return objectFromSchema(schema, ctx, depth);
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

function objectFromSchema(schema: JsonSchema, ctx: SchemaContext, depth: number): fc.Arbitrary<unknown> {
  const props = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  // A connection body: its configuration follows its type.
  if ('configuration' in props && ctx.connectionTypes.length > 0) {
    const others = Object.fromEntries(
      Object.entries(props)
        .filter(([k]) => k !== 'configuration' && k !== 'type')
        .map(([k, s]) => [k, fromSchema(s, ctx, k, depth + 1)]),
    );
    const requiredKeys = [...required].filter((k) => k !== 'configuration' && k !== 'type');
    return fc
      .tuple(
        fc.constantFrom(...ctx.connectionTypes),
        fc.record(others, { requiredKeys }),
        fc.integer({ min: 0, max: 9 }),
      )
      .chain(([t, rest, roll]) =>
        configurationFor(t).map((configuration) => {
          const body: Record<string, unknown> = { ...rest };
          // PUT bodies may leave type and configuration out; POST bodies need both.
          if (required.has('type') || roll < 6) body.type = roll === 9 ? 'oracle' : t.id;
          if (required.has('configuration') || roll < 6) body.configuration = configuration;
          return body;
        }),
      );
  }
  if (Object.keys(props).length === 0 && typeof schema.additionalProperties === 'object') {
    return fc.dictionary(
      fc.string({ maxLength: 12 }),
      fromSchema(schema.additionalProperties, ctx, '', depth + 1),
      {
        maxKeys: 3,
      },
    );
  }
  const arbs = Object.fromEntries(
    Object.entries(props).map(([k, s]) => [k, fromSchema(s, ctx, k, depth + 1)]),
  );
  return fc.record(arbs, { requiredKeys: [...required].filter((k) => k in arbs) });
}

/** Values aimed at a numeric field's bounds: just past them, far past them, and not whole. */
const numberProbe = (schema: JsonSchema | undefined): fc.Arbitrary<unknown> =>
  fc.constantFrom<unknown>(
    (schema?.maximum ?? 2 ** 31) + 1,
    (schema?.minimum ?? 0) - 1,
    1e20,
    -1e20,
    2 ** 53 + 2,
    1e308,
    0,
    -1,
    1.5,
    raw('1e400'),
    raw('123456789012345678901234567890'),
    '5',
  );

/** A valid-looking body with one thing broken: a field of the wrong type or out of bounds, a missing or an unknown one. */
export function mutated(schema: JsonSchema, ctx: SchemaContext): fc.Arbitrary<unknown> {
  const props = schema.properties ?? {};
  const fields = Object.keys(props);
  const numeric = fields.filter((f) => props[f]?.type === 'integer' || props[f]?.type === 'number');
  const fieldName = fields.length > 0 ? fc.constantFrom(...fields) : fc.constant('x');
  const numericField = numeric.length > 0 ? fc.constantFrom(...numeric) : fieldName;
  return fc
    .tuple(
      fromSchema(schema, ctx),
      fc.integer({ min: 0, max: 6 }),
      fieldName,
      numericField.chain((f) => fc.tuple(fc.constant(f), numberProbe(props[f]))),
      nastyValue,
      fc.oneof(
        fc.string({ maxLength: 12 }),
        fc.constantFrom('__proto__', 'constructor', 'prototype', 'Query', 'query '),
      ),
    )
    .map(([valid, how, field, [numberField, probe], value, unknownField]) => {
      if (valid === null || typeof valid !== 'object' || Array.isArray(valid)) return value;
      const body = JSON.parse(JSON.stringify(valid)) as Record<string, unknown>;
      // defineProperty, so "__proto__" becomes an own field as in parsed JSON, not the prototype.
      const set = (k: string, v: unknown) =>
        Object.defineProperty(body, k, { value: v, enumerable: true, writable: true, configurable: true });
      switch (how) {
        case 0:
        case 1:
          set(field, value);
          break;
        case 2:
        case 3:
          set(numberField, probe);
          break;
        case 4:
          delete body[field];
          break;
        case 5:
          set(unknownField, value);
          break;
        default: {
          const max = props[field]?.maxLength;
          set(field, props[field]?.type === 'string' ? 'x'.repeat((max ?? 255) + 1) : value);
        }
      }
      return body;
    });
}
