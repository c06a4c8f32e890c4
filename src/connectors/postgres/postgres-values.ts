import { JsonText, type CellValue } from '../connector.js';

/**
 * PostgreSQL types and values: which type each column has (built-in OIDs from a fixed table, the rest
 * looked up in pg_type), and text → CellValue by type, arrays included.
 *
 * PostgreSQL text → CellValue, by type. Every value arrives as the server's own text (the session
 * sets DateStyle ISO, TimeZone UTC, IntervalStyle postgres, extra_float_digits 3, bytea_output hex),
 * so nothing is lost before this mapping picks the exact form CONTRACT.md asks for.
 */

/** How the values of one type are turned into CellValues. */
export type PgScalarKind =
  | 'int' // int2, int4, oid, xid: fit a double exactly
  | 'int8' // bigint: digit for digit
  | 'float' // float4, float8 ('NaN', 'Infinity', '-Infinity' included)
  | 'numeric' // exact decimal text
  | 'bool'
  | 'timestamp'
  | 'timestamptz'
  | 'json'
  | 'bytea'
  | 'text'; // everything else the contract renders as a string (date, time, interval, uuid, enums…)

export type PgTypeInfo =
  | { name: string; kind: PgScalarKind }
  | { name: string; kind: 'array'; element: PgTypeInfo; delimiter: string };

export type PgDecoder = (text: string) => CellValue;

// [oid, typname, kind, array oid] of the built-in types; built-in OIDs are fixed across versions.
const BUILTIN_SCALARS: readonly [number, string, PgScalarKind, number?][] = [
  [16, 'bool', 'bool', 1000],
  [17, 'bytea', 'bytea', 1001],
  [18, 'char', 'text', 1002],
  [19, 'name', 'text', 1003],
  [20, 'int8', 'int8', 1016],
  [21, 'int2', 'int', 1005],
  [23, 'int4', 'int', 1007],
  [24, 'regproc', 'text', 1008],
  [25, 'text', 'text', 1009],
  [26, 'oid', 'int', 1028],
  [27, 'tid', 'text', 1010],
  [28, 'xid', 'int', 1011],
  [29, 'cid', 'int', 1012],
  [114, 'json', 'json', 199],
  [142, 'xml', 'text', 143],
  [194, 'pg_node_tree', 'text'],
  [600, 'point', 'text', 1017],
  [601, 'lseg', 'text', 1018],
  [602, 'path', 'text', 1019],
  [603, 'box', 'text', 1020],
  [604, 'polygon', 'text', 1027],
  [628, 'line', 'text', 629],
  [650, 'cidr', 'text', 651],
  [700, 'float4', 'float', 1021],
  [701, 'float8', 'float', 1022],
  [705, 'unknown', 'text'],
  [718, 'circle', 'text', 719],
  [774, 'macaddr8', 'text', 775],
  [790, 'money', 'text', 791],
  [829, 'macaddr', 'text', 1040],
  [869, 'inet', 'text', 1041],
  [1033, 'aclitem', 'text', 1034],
  [1042, 'bpchar', 'text', 1014],
  [1043, 'varchar', 'text', 1015],
  [1082, 'date', 'text', 1182],
  [1083, 'time', 'text', 1183],
  [1114, 'timestamp', 'timestamp', 1115],
  [1184, 'timestamptz', 'timestamptz', 1185],
  [1186, 'interval', 'text', 1187],
  [1266, 'timetz', 'text', 1270],
  [1560, 'bit', 'text', 1561],
  [1562, 'varbit', 'text', 1563],
  [1700, 'numeric', 'numeric', 1231],
  [1790, 'refcursor', 'text', 2201],
  [2202, 'regprocedure', 'text', 2207],
  [2203, 'regoper', 'text', 2208],
  [2204, 'regoperator', 'text', 2209],
  [2205, 'regclass', 'text', 2210],
  [2206, 'regtype', 'text', 2211],
  [2249, 'record', 'text', 2287],
  [2275, 'cstring', 'text', 1263],
  [2278, 'void', 'text'],
  [2950, 'uuid', 'text', 2951],
  [3220, 'pg_lsn', 'text', 3221],
  [3614, 'tsvector', 'text', 3643],
  [3615, 'tsquery', 'text', 3645],
  [3802, 'jsonb', 'json', 3807],
  [3904, 'int4range', 'text', 3905],
  [3906, 'numrange', 'text', 3907],
  [3908, 'tsrange', 'text', 3909],
  [3910, 'tstzrange', 'text', 3911],
  [3912, 'daterange', 'text', 3913],
  [3926, 'int8range', 'text', 3927],
  [4072, 'jsonpath', 'text', 4073],
  [4089, 'regnamespace', 'text', 4090],
  [4096, 'regrole', 'text', 4097],
  [5069, 'xid8', 'int8', 271],
];

const BUILTIN_TYPES: ReadonlyMap<number, PgTypeInfo> = (() => {
  const map = new Map<number, PgTypeInfo>();
  for (const [oid, name, kind, arrayOid] of BUILTIN_SCALARS) {
    const element: PgTypeInfo = { name, kind };
    map.set(oid, element);
    // box is the one built-in type whose array delimiter is not a comma.
    if (arrayOid !== undefined) {
      map.set(arrayOid, { name: `_${name}`, kind: 'array', element, delimiter: name === 'box' ? ';' : ',' });
    }
  }
  return map;
})();

/** The built-in type with this OID, or undefined for types that must be looked up in pg_type. */
export function builtinType(oid: number): PgTypeInfo | undefined {
  return BUILTIN_TYPES.get(oid);
}

const SCALAR_DECODERS: Record<PgScalarKind, PgDecoder> = {
  int: (t) => Number(t),
  // PostgreSQL writes int8 as plain digits: spliced as they are, exact, with no BigInt per value.
  int8: (t) => new JsonText(t),
  // Number() reads 'NaN', 'Infinity' and '-Infinity' as PostgreSQL writes them; with
  // extra_float_digits > 0 the text is the shortest exact form, so the double is exact too.
  float: (t) => Number(t),
  // Digits, sign, point, NaN, Infinity: nothing in it needs JSON escaping, so it skips the encoder's scan.
  numeric: (t) => new JsonText('"' + t + '"'),
  bool: (t) => t === 't',
  timestamp: decodeTimestamp,
  timestamptz: decodeTimestamptz,
  json: (t) => new JsonText(t),
  bytea: decodeBytea,
  text: (t) => t,
};

/** The function that maps one non-NULL value of `type` from its text. */
export function decoderFor(type: PgTypeInfo): PgDecoder {
  if (type.kind !== 'array') return SCALAR_DECODERS[type.kind];
  const element = decoderFor(type.element);
  const delimiter = type.delimiter;
  return (t) => parsePgArray(t, element, delimiter);
}

// `2026-01-01 10:00:00[.ffffff]`, also with years beyond 9999; infinity and BC dates do not match.
const TIMESTAMP = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)$/;
// The same in a UTC session: PostgreSQL writes the offset as `+00`.
const TIMESTAMPTZ_UTC = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)\+00$/;

// A matched timestamp is digits and punctuation: a JSON string as it stands, spliced without the
// encoder's escape scan.
function decodeTimestamp(t: string): CellValue {
  const m = TIMESTAMP.exec(t);
  // infinity, -infinity and BC dates have no RFC 3339 form: the database's text is kept.
  return m ? new JsonText(`"${m[1]}T${m[2]}"`) : t;
}

function decodeTimestamptz(t: string): CellValue {
  const m = TIMESTAMPTZ_UTC.exec(t);
  return m ? new JsonText(`"${m[1]}T${m[2]}Z"`) : t;
}

function decodeBytea(t: string): Uint8Array {
  if (t.startsWith('\\x')) {
    const b = Buffer.from(t.slice(2), 'hex');
    // A plain Uint8Array view: the contract's binary type, not Node's Buffer subclass.
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }
  // The session asks for hex; the old escape format is read too, should a pooler drop the SET.
  const bytes: number[] = [];
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c !== 0x5c) bytes.push(c);
    else if (t[i + 1] === '\\') {
      bytes.push(0x5c);
      i++;
    } else {
      bytes.push(parseInt(t.slice(i + 1, i + 4), 8));
      i += 3;
    }
  }
  return Uint8Array.from(bytes);
}

// ---- types that are not built in ----

/** Runs one read-only query and returns its rows as text arrays (the session's parsers are identity). */
export type PgTypeQuery = (sql: string, parameters: unknown[]) => Promise<(string | null)[][]>;

interface PgTypeRow {
  name: string;
  /** pg_type.typtype: b base, c composite, d domain, e enum, p pseudo, r range, m multirange. */
  typtype: string;
  typcategory: string;
  elem: number;
  base: number;
  delimiter: string;
}

const TYPE_SQL =
  'SELECT oid::text, typname::text, typtype::text, typcategory::text, typelem::text, typbasetype::text, typdelim::text' +
  ' FROM pg_catalog.pg_type WHERE oid = ANY($1::oid[])';

/** Lookup rounds: one for the columns' types, more only for arrays of domains of arrays… */
const MAX_ROUNDS = 4;

/**
 * Resolves every column type OID to a PgTypeInfo: built-in OIDs from the fixed table, the rest
 * (enums, domains, extension types, arrays of those) with one pg_type query per round.
 * Enums, composites, ranges and extension types read as text; domains behave as their base type.
 */
export async function resolvePgTypes(
  oids: readonly number[],
  query: PgTypeQuery,
): Promise<Map<number, PgTypeInfo>> {
  const rows = new Map<number, PgTypeRow>();
  let wanted = [...new Set(oids)].filter((oid) => builtinType(oid) === undefined);
  for (let round = 0; wanted.length > 0 && round < MAX_ROUNDS; round++) {
    for (const r of await query(TYPE_SQL, [wanted])) {
      const [oid, name, typtype, typcategory, elem, base, delimiter] = r;
      rows.set(Number(oid), {
        name: name ?? 'unknown',
        typtype: typtype ?? 'b',
        typcategory: typcategory ?? 'U',
        elem: Number(elem ?? 0),
        base: Number(base ?? 0),
        delimiter: delimiter ?? ',',
      });
    }
    const asked = new Set(wanted);
    const next = new Set<number>();
    for (const oid of asked) {
      const row = rows.get(oid);
      for (const ref of row ? [row.elem, row.base] : []) {
        if (ref !== 0 && builtinType(ref) === undefined && !rows.has(ref)) next.add(ref);
      }
    }
    wanted = [...next];
  }

  const resolved = new Map<number, PgTypeInfo>();
  const resolve = (oid: number, depth: number): PgTypeInfo => {
    const builtin = builtinType(oid);
    if (builtin) return builtin;
    const row = rows.get(oid);
    // A type that vanished between the query and the lookup, or nesting beyond reason: text is safe.
    if (!row || depth > MAX_ROUNDS) return { name: row?.name ?? String(oid), kind: 'text' };
    if (row.typtype === 'd' && row.base !== 0) {
      const base = resolve(row.base, depth + 1);
      return { ...base, name: row.name };
    }
    if (row.typcategory === 'A' && row.elem !== 0) {
      const element = resolve(row.elem, depth + 1);
      // typdelim lives on the element type.
      const delimiter = rows.get(row.elem)?.delimiter ?? (element.name === 'box' ? ';' : ',');
      return { name: row.name, kind: 'array', element, delimiter };
    }
    return { name: row.name, kind: 'text' };
  };
  for (const oid of oids) resolved.set(oid, resolve(oid, 0));
  return resolved;
}

// ---- arrays ----

/**
 * Parses PostgreSQL's text form of an array (`{1,2,NULL}`, `{{1,2},{3,4}}`, `{"a,b","q\"x"}`,
 * `[0:1]={1,2}`) into nested JS arrays, mapping every non-NULL element with `mapElement`.
 * Written here rather than borrowed from pg-types' transitive `postgres-array`, which the project
 * does not depend on directly.
 */
export function parsePgArray(
  text: string,
  mapElement: (element: string) => CellValue,
  delimiter = ',',
): CellValue[] {
  // Arrays with non-default lower bounds carry a `[lo:hi]=` prefix; JSON arrays start at 0 anyway.
  let pos = text.startsWith('[') ? text.indexOf('=') + 1 : 0;

  const fail = (): never => {
    throw new Error(`Unexpected array text from PostgreSQL at offset ${pos}.`);
  };

  const parseLevel = (): CellValue[] => {
    if (text[pos] !== '{') fail();
    pos++;
    const out: CellValue[] = [];
    if (text[pos] === '}') {
      pos++;
      return out;
    }
    for (;;) {
      const ch = text[pos];
      if (ch === '{') {
        out.push(parseLevel());
      } else if (ch === '"') {
        pos++;
        let value = '';
        let start = pos;
        for (;;) {
          const c = text[pos];
          if (c === undefined) fail();
          if (c === '\\') {
            value += text.slice(start, pos);
            start = pos + 1;
            pos += 2;
          } else if (c === '"') {
            value += text.slice(start, pos);
            pos++;
            break;
          } else {
            pos++;
          }
        }
        // A quoted "NULL" is the string NULL, never the null value.
        out.push(mapElement(value));
      } else {
        const start = pos;
        while (pos < text.length && text[pos] !== delimiter && text[pos] !== '}') pos++;
        const token = text.slice(start, pos).trim();
        out.push(token.toUpperCase() === 'NULL' ? null : mapElement(token));
      }
      const next = text[pos];
      pos++;
      if (next === '}') return out;
      if (next !== delimiter) fail();
    }
  };

  return parseLevel();
}
