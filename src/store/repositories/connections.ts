import type { Db } from '../database.js';
import type { ConnectionsTable } from '../schema.js';

export type ConnectionRow = ConnectionsTable;

export class ConnectionsRepository {
  constructor(private readonly db: Db) {}

  listByOrganization(organizationId: string): Promise<ConnectionRow[]> {
    return this.db
      .selectFrom('connections')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
  }

  /** Scoped by organization: a connection of another organization simply does not exist for the caller. */
  find(organizationId: string, id: string): Promise<ConnectionRow | undefined> {
    return this.db
      .selectFrom('connections')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .executeTakeFirst();
  }

  /** For workers, which act on a task already checked against its owner's organization. */
  findById(id: string): Promise<ConnectionRow | undefined> {
    return this.db.selectFrom('connections').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Every stored configuration that holds a sealed secret (for the start-up key check). */
  async configurationsWithSecrets(): Promise<string[]> {
    const rows = await this.db
      .selectFrom('connections')
      .select('configuration')
      .where('configuration', 'like', '%"enc:v1:%')
      .execute();
    return rows.map((r) => r.configuration);
  }

  async insert(row: ConnectionRow): Promise<void> {
    await this.db.insertInto('connections').values(row).execute();
  }

  async update(
    id: string,
    changes: Partial<
      Pick<ConnectionRow, 'name' | 'configuration' | 'status' | 'status_error' | 'updated_at'>
    >,
  ): Promise<void> {
    await this.db.updateTable('connections').set(changes).where('id', '=', id).execute();
  }

  async delete(organizationId: string, id: string): Promise<boolean> {
    const r = await this.db
      .deleteFrom('connections')
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
