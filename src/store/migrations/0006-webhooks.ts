import { sql, type Kysely } from 'kysely';

/**
 * Push instead of poll (issue 12, 4c): a query's `callback_url`, each organization's webhook signing secret
 * (sealed, with the previous one while it still signs), and the durable queue of callback deliveries.
 * Portable types only: see 0001.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the current schema types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('query_tasks').addColumn('callback_url', 'text').execute();
  // The delivery loop looks for ended tasks with a callback and no delivery row (a crash between the two):
  // only tasks with a callback are in this index, by the time they ended.
  await db.schema
    .createIndex('query_tasks_callback_finished')
    .on('query_tasks')
    .column('finished_at')
    .where(sql.ref('callback_url'), 'is not', null)
    .execute();

  await db.schema
    .createTable('webhook_secrets')
    .addColumn('organization_id', 'text', (c) =>
      c.primaryKey().references('organizations.id').onDelete('cascade'),
    )
    // `enc:v1:…`, sealed with the secrets key like connection passwords.
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('previous_secret', 'text')
    .addColumn('previous_expires_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('rotated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('webhook_deliveries')
    // One delivery per query. No foreign key to the task: retention may delete the task row first.
    .addColumn('task_id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) =>
      c.notNull().references('organizations.id').onDelete('cascade'),
    )
    .addColumn('url', 'text', (c) => c.notNull())
    // The JSON body, fixed when the query ended: {id, status, count, error}.
    .addColumn('payload', 'text', (c) => c.notNull())
    // `pending` until a 2xx (`delivered`) or until it gives up (`failed`).
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    // Also the claim: an attempt moves it past its own timeout, so no other process takes it meanwhile.
    .addColumn('next_attempt_at', 'text', (c) => c.notNull())
    .addColumn('give_up_at', 'text', (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('finished_at', 'text')
    .execute();
  await db.schema
    .createIndex('webhook_deliveries_due')
    .on('webhook_deliveries')
    .columns(['status', 'next_attempt_at'])
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('webhook_deliveries').execute();
  await db.schema.dropTable('webhook_secrets').execute();
  await db.schema.dropIndex('query_tasks_callback_finished').execute();
  await db.schema.alterTable('query_tasks').dropColumn('callback_url').execute();
}
