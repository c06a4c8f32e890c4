/**
 * The pieces of PostgreSQL's COPY path that need no server: which statements are wrapped and how, and
 * COPY's text format back into the values' own text. test/integration/postgres-read-paths.test.ts runs
 * them against PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import {
  CopyRowReader,
  copyStatement,
  parseCopyText,
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

  it('drops a final semicolon and what follows it, keeps every other comment, and reads no `;` inside quotes or comments', () => {
    const end = (sql: string) => sql.slice(0, scanSql(sql)!.end);
    expect(end('SELECT 1;')).toBe('SELECT 1');
    expect(end('SELECT 1 ; ;\n-- done\n/* x; */ ')).toBe('SELECT 1 ');
    expect(end('SELECT 1 /* tag */;')).toBe('SELECT 1 /* tag */');
    expect(end("SELECT ';'")).toBe("SELECT ';'");
    expect(end("SELECT 'it''s;'")).toBe("SELECT 'it''s;'");
    expect(end("SELECT E'\\';'")).toBe("SELECT E'\\';'");
    expect(end('SELECT "a;""b"')).toBe('SELECT "a;""b"');
    expect(end('SELECT $$;$$, $tag$ $$; $tag$')).toBe('SELECT $$;$$, $tag$ $$; $tag$');
    expect(end('SELECT $1; ')).toBe('SELECT $1');
    expect(end('SELECT 1')).toBe('SELECT 1');
    expect(end('SELECT 1 -- ; not the end')).toBe('SELECT 1 -- ; not the end');
    expect(end("SELECT 1 /* app='x' */")).toBe("SELECT 1 /* app='x' */");
    // Not an E string: a backslash in a standard string is an ordinary character.
    expect(end("SELECT 'a\\'; -- x")).toBe("SELECT 'a\\'");
  });
});

describe('parseCopyText', () => {
  const parse = (text: string, width: number, limit = 100) => {
    const rows: RawRow[] = [];
    const next = parseCopyText(text, 0, width, rows, limit);
    return { rows, next };
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

  it('stops at the limit, saying where to go on', () => {
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
    expect(() => parse('1\n2\t3\n', 2)).toThrow(/1 of the 2 columns/);
    expect(() => parse('x\n', 0)).toThrow(/more than the 0 columns/);
    expect(() => parse('1\t2', 2)).toThrow(/does not end with a newline/);
  });
});

describe('CopyRowReader', () => {
  async function* chunks(parts: Buffer[]): AsyncGenerator<Buffer> {
    for (const part of parts) yield part;
  }
  const all = Buffer.from('1\té€\\t😀\n2\t\\N\n3\t\\\\x\n', 'utf8');
  const expected = [
    ['1', 'é€\t😀'],
    ['2', null],
    ['3', '\\x'],
  ];

  it('gives the same rows wherever the chunks are cut (inside characters and escapes too)', async () => {
    for (let a = 0; a <= all.length; a++) {
      for (let b = a; b <= all.length; b++) {
        const reader = new CopyRowReader(
          chunks([all.subarray(0, a), all.subarray(a, b), all.subarray(b)]),
          2,
        );
        const rows: RawRow[] = [];
        for (;;) {
          const batch = await reader.read(2);
          rows.push(...batch.rows);
          expect(batch.rows.length).toBeLessThanOrEqual(2);
          if (batch.done) break;
        }
        expect(rows, `cut at ${a} and ${b}`).toEqual(expected);
        expect(reader.received).toBe(all.length);
      }
    }
  });

  it('joins a row that spans many chunks once, when its end arrives', async () => {
    const long = 'é'.repeat(300_000);
    const data = Buffer.from(`1\t${long}\n2\tb\n`, 'utf8');
    const parts: Buffer[] = [];
    for (let at = 0; at < data.length; at += 1000) parts.push(data.subarray(at, at + 1000));
    const reader = new CopyRowReader(chunks(parts), 2);
    const batch = await reader.read(10);
    expect(batch.rows).toEqual([
      ['1', long],
      ['2', 'b'],
    ]);
    expect(batch.done).toBe(true);
  });

  it('refuses data that ends in the middle of a row', async () => {
    const reader = new CopyRowReader(chunks([Buffer.from('1\ta\n2\tb')]), 2);
    await expect(reader.read(10)).rejects.toThrow(/middle of a row/);
  });
});
