import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001-identity-and-connections.js';
import * as m0002 from './0002-query-tasks.js';
import * as m0003 from './0003-limits.js';
import * as m0004 from './0004-polytomic-connections.js';
import * as m0005 from './0005-task-details.js';
import * as m0006 from './0006-webhooks.js';

/** Migrations are compiled in, not read from disk, so the built package carries them. Append only. */
const migrations: Record<string, Migration> = {
  '0001-identity-and-connections': m0001,
  '0002-query-tasks': m0002,
  '0003-limits': m0003,
  '0004-polytomic-connections': m0004,
  '0005-task-details': m0005,
  '0006-webhooks': m0006,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
