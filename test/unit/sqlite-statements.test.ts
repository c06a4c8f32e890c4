/**
 * The metadata store's SQLite statements, kept by their text (src/store/sqlite-statements.ts): reused
 * while idle, never handed to a second caller while one iterates it, bounded, and right after a schema
 * change.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { withStatementCache } from '../../src/store/sqlite-statements.js';

let open: Database.Database[] = [];
afterEach(() => {
  for (const db of open) db.close();
  open = [];
});

function database(): Database.Database {
  const db = new Database(':memory:');
  open.push(db);
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  db.exec("INSERT INTO t (v) VALUES ('a'), ('b'), ('c')");
  return db;
}

describe('withStatementCache', () => {
  it('prepares each text once and runs it again with other parameters', () => {
    const db = database();
    const cached = withStatementCache(db);
    const first = cached.prepare('SELECT v FROM t WHERE id = ?');
    expect(first.all([1])).toEqual([{ v: 'a' }]);
    const again = cached.prepare('SELECT v FROM t WHERE id = ?');
    expect(again).toBe(first);
    expect(again.all([3])).toEqual([{ v: 'c' }]);
    expect(cached.prepare('UPDATE t SET v = ? WHERE id = ?').run(['z', 2]).changes).toBe(1);
    expect(cached.prepare('UPDATE t SET v = ? WHERE id = ?').run(['y', 3]).changes).toBe(1);
    expect(cached.prepare('SELECT v FROM t ORDER BY id').all([])).toEqual([
      { v: 'a' },
      { v: 'z' },
      { v: 'y' },
    ]);
  });

  it('gives a fresh statement while the kept one is being iterated', () => {
    const cached = withStatementCache(database());
    const sql = 'SELECT id FROM t ORDER BY id';
    const outer = cached.prepare(sql);
    const rows: unknown[] = [];
    for (const row of outer.iterate([])) {
      const inner = cached.prepare(sql);
      expect(inner).not.toBe(outer);
      rows.push([row, inner.all([]).length]);
    }
    expect(rows).toEqual([
      [{ id: 1 }, 3],
      [{ id: 2 }, 3],
      [{ id: 3 }, 3],
    ]);
    expect(cached.prepare(sql)).toBe(outer);
  });

  it('keeps at most `limit` statements, dropping the oldest', () => {
    const cached = withStatementCache(database(), 2);
    const a = cached.prepare('SELECT 1');
    const b = cached.prepare('SELECT 2');
    cached.prepare('SELECT 3');
    expect(cached.prepare('SELECT 2')).toBe(b);
    expect(cached.prepare('SELECT 1')).not.toBe(a);
  });

  it('answers with the new schema after a migration', () => {
    const db = database();
    const cached = withStatementCache(db);
    expect(cached.prepare('SELECT * FROM t WHERE id = ?').all([1])).toEqual([{ id: 1, v: 'a' }]);
    cached.prepare("ALTER TABLE t ADD COLUMN w TEXT DEFAULT 'x'").run([]);
    expect(cached.prepare('SELECT * FROM t WHERE id = ?').all([1])).toEqual([{ id: 1, v: 'a', w: 'x' }]);
  });
});
