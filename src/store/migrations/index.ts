import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001-identity-and-connections.js';
import * as m0002 from './0002-query-tasks.js';
import * as m0003 from './0003-limits.js';

/** Migrations are compiled in, not read from disk, so the built package carries them. Append only. */
const migrations: Record<string, Migration> = {
  '0001-identity-and-connections': m0001,
  '0002-query-tasks': m0002,
  '0003-limits': m0003,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
