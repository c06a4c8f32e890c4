import { builtinType, type PgTypeInfo } from './postgres-values.js';

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
