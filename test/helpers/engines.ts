import { duckdbFixture } from './duckdb-fixture.js';
import type { EngineFixture } from './engine-fixture.js';
import { mysqlFixture } from './mysql-fixture.js';
import { postgresFixture } from './postgres-fixture.js';
import { sqliteFixture } from './sqlite-fixture.js';

const ALL: readonly EngineFixture[] = [postgresFixture, mysqlFixture, sqliteFixture, duckdbFixture];

/**
 * Every engine's fixture, for suites that loop over engines. `QRUN_TEST_ENGINES=postgresql,mysql`
 * runs a subset; an unknown name there is an error rather than a silently empty run.
 */
export function engineFixtures(): EngineFixture[] {
  const filter = process.env['QRUN_TEST_ENGINES']?.trim();
  if (!filter) return [...ALL];
  const wanted = filter
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = wanted.filter((type) => !ALL.some((f) => f.type === type));
  if (unknown.length > 0) {
    throw new Error(
      `QRUN_TEST_ENGINES names unknown engines: ${unknown.join(', ')} (known: ${ALL.map((f) => f.type).join(', ')}).`,
    );
  }
  return ALL.filter((f) => wanted.includes(f.type));
}
