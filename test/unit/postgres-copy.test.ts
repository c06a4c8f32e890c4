/**
 * The pieces of PostgreSQL's COPY path that need no server: which statements are wrapped and how, and
 * COPY's text format back into the values' own text. test/integration/postgres-read-paths.test.ts runs
 * them against PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import {
  copyStatement,
  parseCopyRows,
  scanSql,
  type RawRow,
} from '../../src/connectors/postgres/postgres-copy.js';

describe('copyStatement', () => {
  it('wraps queries that start with SELECT, WITH, VALUES or TABLE, after comments and parentheses', () => {
    expect(copyStatement('select 1')).toBe('COPY (select 1\n) TO STDOUT');
    expect(copyStatement('  -- hi\n/* a /* nested */ b */ (WITH x AS (SELECT 1) TABLE x)')).toBe(
      'COPY (  -- hi\n/* a /* nested */ b */ (WITH x AS (SELECT 1) TABLE x)\n) TO STDOUT',
    );
    expect(copyStatement('VALUES (1)')).toBe('COPY (VALUES (1)\n) TO STDOUT');
    expect(copyStatement('TABLE t')).toBe('COPY (TABLE t\n) TO STDOUT');
  });

  it('leaves everything else to the cursor', () => {
    for (const sql of [
      'INSERT INTO t VALUES (1) RETURNING *',
      'SHOW TimeZone',
      'EXPLAIN SELECT 1',
      'COPY t TO STDOUT',
      'selectx 1',
      '',
      '   ',
      '-- only a comment',
      "SELECT 'unterminated",
      'SELECT 1 /* unterminated',
      'SELECT $a$ unterminated',
    ]) {
      expect(copyStatement(sql), sql).toBeUndefined();
    }
  });

  it('drops a final semicolon and what follows it, and nothing inside quotes or comments', () => {
    const end = (sql: string) => sql.slice(0, scanSql(sql)!.end);
    expect(end('SELECT 1;')).toBe('SELECT 1');
    expect(end('SELECT 1 ; ;\n-- done\n/* x; */ ')).toBe('SELECT 1');
    expect(end("SELECT ';'")).toBe("SELECT ';'");
    expect(end("SELECT 'it''s;'")).toBe("SELECT 'it''s;'");
    expect(end("SELECT E'\\';'")).toBe("SELECT E'\\';'");
    expect(end('SELECT "a;""b"')).toBe('SELECT "a;""b"');
    expect(end('SELECT $$;$$, $tag$ $$; $tag$')).toBe('SELECT $$;$$, $tag$ $$; $tag$');
    expect(end('SELECT $1; ')).toBe('SELECT $1');
    expect(end('SELECT 1 -- ; not the end')).toBe('SELECT 1');
    // Not an E string: a backslash in a standard string is an ordinary character.
    expect(end("SELECT 'a\\'; -- x")).toBe("SELECT 'a\\'");
  });
});

describe('parseCopyRows', () => {
  const parse = (text: string | Buffer, width: number, limit = 100) => {
    const buf = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
    const rows: RawRow[] = [];
    const next = parseCopyRows(buf, 0, width, rows, limit);
    return { rows, next, length: buf.length };
  };

  it('splits rows on newlines and fields on tabs; \\N is NULL', () => {
    expect(parse('1\ta\n2\t\\N\n', 2).rows).toEqual([
      ['1', 'a'],
      ['2', null],
    ]);
    expect(parse('\t\n', 2).rows).toEqual([['', '']]);
  });

  it('undoes every escape COPY writes, and the octal and hex ones it reads', () => {
    expect(parse('a\\tb\\nc\\rd\\\\e\\bf\\fg\\vh\n', 1).rows).toEqual([['a\tb\nc\rd\\e\bf\fg\vh']]);
    expect(parse('\\\\N\n', 1).rows).toEqual([['\\N']]);
    expect(parse('\\101\\x42\\7\\q\n', 1).rows).toEqual([['AB\x07q']]);
    expect(parse('\\x\n', 1).rows).toEqual([['x']]);
  });

  it('decodes UTF-8, also when an escape sits beside multi-byte characters', () => {
    expect(parse('é€😀\t中\\t文\n', 2).rows).toEqual([['é€😀', '中\t文']]);
  });

  it('stops before a partial row, and at the limit, saying where to go on', () => {
    const partial = parse('1\ta\n2\tb', 2);
    expect(partial.rows).toEqual([['1', 'a']]);
    expect(partial.next).toBe(4);
    const escapeAtEnd = parse('1\ta\n2\tb\\', 2);
    expect(escapeAtEnd.next).toBe(4);
    const limited = parse('1\n2\n3\n', 1, 2);
    expect(limited.rows).toEqual([['1'], ['2']]);
    expect(limited.next).toBe(4);
  });

  it('reads rows of no columns as empty lines', () => {
    expect(parse('\n\n', 0).rows).toEqual([[], []]);
  });

  it('refuses rows whose width is not the described one', () => {
    expect(() => parse('1\t2\t3\n', 2)).toThrow(/more than the 2 columns/);
    expect(() => parse('1\n', 2)).toThrow(/1 of the 2 columns/);
  });
});
