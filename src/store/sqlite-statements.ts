import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase } from 'kysely';

/** Statements kept per store; the store's own SQL is a few dozen texts, so this bound is never reached in use. */
const DEFAULT_LIMIT = 500;

/**
 * The SQLite database as Kysely's dialect sees it, with prepared statements kept by their SQL text.
 *
 * Kysely's SQLite driver prepares every statement on every execution, and preparing costs more than
 * running one of the store's small queries: in the many-small-queries benchmark, `prepare` took 12% of
 * the process's time. The store's SQL is a fixed set of texts (values are always parameters), so each is
 * prepared once and reused. better-sqlite3 runs a statement to completion synchronously, except one being
 * iterated (a streamed select): such a busy statement is left alone and the overlapping caller gets a
 * fresh one. SQLite re-prepares a kept statement by itself after a schema change (migrations).
 */
export function withStatementCache(db: BetterSqlite3.Database, limit = DEFAULT_LIMIT): SqliteDatabase {
  const statements = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => db.close(),
    prepare(sql) {
      const kept = statements.get(sql);
      if (kept !== undefined && !kept.busy) return kept;
      const statement = db.prepare(sql);
      if (kept === undefined) {
        // Oldest first out: Map iterates in insertion order.
        if (statements.size >= limit) statements.delete(statements.keys().next().value!);
        statements.set(sql, statement);
      }
      return statement;
    },
  };
}
