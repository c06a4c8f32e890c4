import type { Kysely } from 'kysely';

/**
 * Per-organization limits and clean-up (issue 10): counting an organization's unfinished queries on
 * every submit needs an index, and page deletions that failed are kept until the sweeper gets them done.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the current schema types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createIndex('query_tasks_organization_status')
    .on('query_tasks')
    .columns(['organization_id', 'status'])
    .execute();
  await db.schema
    .createTable('page_deletions')
    // No foreign key: the task row may be gone (retention, a deleted organization) while its pages are not.
    .addColumn('query_id', 'text', (c) => c.primaryKey())
    .addColumn('requested_at', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_error', 'text')
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('page_deletions').execute();
  await db.schema.dropIndex('query_tasks_organization_status').execute();
}
