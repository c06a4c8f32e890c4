import type { Kysely } from 'kysely';

/**
 * Every field of Polytomic's connection schemas (issue 12): who created and last changed a connection,
 * its periodic health check, and an index for counting its queries of the last 24 hours. Portable types
 * only (see 0001); SQLite adds one column per ALTER TABLE.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the current schema types
export async function up(db: Kysely<any>): Promise<void> {
  for (const [name, type] of [
    // `{"id", "name", "type"}` as JSON text: the user (or organization key) that made the change, as it was then.
    ['created_by', 'text'],
    ['updated_by', 'text'],
    // The periodic check: its interval (null: none), when it is next due, and while one runs, the end of
    // its claim (a check runs in one process at a time: see ConnectionsRepository.claimHealthcheck).
    ['healthcheck_interval_seconds', 'integer'],
    ['healthcheck_due_at', 'text'],
    ['healthcheck_running_until', 'text'],
  ] as const) {
    await db.schema.alterTable('connections').addColumn(name, type).execute();
  }
  await db.schema
    .createIndex('connections_healthcheck_due')
    .on('connections')
    .column('healthcheck_due_at')
    .execute();
  // api_calls_last_24_hours: a connection's queries since a time.
  await db.schema
    .createIndex('query_tasks_connection_created')
    .on('query_tasks')
    .columns(['connection_id', 'created_at'])
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('query_tasks_connection_created').execute();
  await db.schema.dropIndex('connections_healthcheck_due').execute();
  for (const name of [
    'healthcheck_running_until',
    'healthcheck_due_at',
    'healthcheck_interval_seconds',
    'updated_by',
    'created_by',
  ]) {
    await db.schema.alterTable('connections').dropColumn(name).execute();
  }
}
