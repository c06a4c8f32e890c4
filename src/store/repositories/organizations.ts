import { conflict } from '../../core/errors.js';
import { nowIso } from '../../core/time.js';
import { isUniqueViolation, type Db } from '../database.js';
import type { OrganizationsTable } from '../schema.js';
import { PageDeletionsRepository } from './page-deletions.js';

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

  /**
   * Deletes the organization; its users, keys, connections and task rows go with it (foreign keys). The
   * pages of its results are queued in page_deletions in the same transaction, since once the task rows
   * are gone nothing else would name them; the sweeper deletes them.
   */
  async delete(id: string, now: string = nowIso()): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await new PageDeletionsRepository(trx).requestForOrganization(id, now);
      const r = await trx.deleteFrom('organizations').where('id', '=', id).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
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
