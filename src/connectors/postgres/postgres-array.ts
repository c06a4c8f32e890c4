import type { CellValue } from '../connector.js';

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
