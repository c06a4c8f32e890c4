import { conflict } from '../../core/errors.js';
import { isUniqueViolation, type Db } from '../database.js';
import type { OrganizationsTable } from '../schema.js';

export type OrganizationRow = OrganizationsTable;

export class OrganizationsRepository {
  constructor(private readonly db: Db) {}

  list(): Promise<OrganizationRow[]> {
    return this.db.selectFrom('organizations').selectAll().orderBy('created_at').orderBy('id').execute();
  }

  find(id: string): Promise<OrganizationRow | undefined> {
    return this.db.selectFrom('organizations').selectAll().where('id', '=', id).executeTakeFirst();
  }

  findByName(name: string): Promise<OrganizationRow | undefined> {
    return this.db.selectFrom('organizations').selectAll().where('name', '=', name).executeTakeFirst();
  }

  async insert(row: OrganizationRow): Promise<void> {
    await this.db
      .insertInto('organizations')
      .values(row)
      .execute()
      .catch((err: unknown) => rethrowNameTaken(err, row.name));
  }

  async rename(id: string, name: string, updatedAt: string): Promise<void> {
    await this.db
      .updateTable('organizations')
      .set({ name, updated_at: updatedAt })
      .where('id', '=', id)
      .execute()
      .catch((err: unknown) => rethrowNameTaken(err, name));
  }

  async delete(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('organizations').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}

/**
 * The service checks the name first, but two processes (or requests) can both pass that check; the unique
 * index then decides, and the loser gets the same 409 as a sequential caller. Bootstrap relies on this when
 * several processes start at once on a new shared store.
 */
function rethrowNameTaken(err: unknown, name: string): never {
  if (isUniqueViolation(err)) {
    throw conflict('organization_exists', `An organization named "${name}" already exists.`);
  }
  throw err;
}
