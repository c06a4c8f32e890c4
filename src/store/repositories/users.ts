import { conflict } from '../../core/errors.js';
import { isUniqueViolation, type Db } from '../database.js';
import type { UsersTable } from '../schema.js';

export type UserRow = UsersTable;

export class UsersRepository {
  constructor(private readonly db: Db) {}

  listByOrganization(organizationId: string): Promise<UserRow[]> {
    return this.db
      .selectFrom('users')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
  }

  find(organizationId: string, id: string): Promise<UserRow | undefined> {
    return this.db
      .selectFrom('users')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .executeTakeFirst();
  }

  findByEmail(email: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
  }

  async insert(row: UserRow): Promise<void> {
    await this.db
      .insertInto('users')
      .values(row)
      .execute()
      .catch((err: unknown) => rethrowEmailTaken(err, row.email));
  }

  async update(id: string, changes: Partial<Pick<UserRow, 'email' | 'role' | 'updated_at'>>): Promise<void> {
    await this.db
      .updateTable('users')
      .set(changes)
      .where('id', '=', id)
      .execute()
      .catch((err: unknown) => rethrowEmailTaken(err, changes.email ?? ''));
  }

  async delete(organizationId: string, id: string): Promise<boolean> {
    const r = await this.db
      .deleteFrom('users')
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}

/** A race past the service's email check ends in the same 409 as a sequential duplicate (see organizations.ts). */
function rethrowEmailTaken(err: unknown, email: string): never {
  if (isUniqueViolation(err)) throw conflict('user_exists', `A user with email ${email} already exists.`);
  throw err;
}
