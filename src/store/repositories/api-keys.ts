import type { Db } from '../database.js';
import type { ApiKeysTable } from '../schema.js';

export type ApiKeyRow = ApiKeysTable;

/** What authentication needs from one key lookup: the key and, for user keys, the user and organization. */
export interface KeyOwner {
  key: ApiKeyRow;
  organizationName: string | null;
  userEmail: string | null;
  userRole: 'admin' | 'user' | null;
}

export class ApiKeysRepository {
  constructor(private readonly db: Db) {}

  /** One indexed lookup by hash; the caller compares the hash again in constant time. */
  async findActiveByHash(hash: string): Promise<KeyOwner | undefined> {
    const row = await this.db
      .selectFrom('api_keys as k')
      .leftJoin('organizations as o', 'o.id', 'k.organization_id')
      .leftJoin('users as u', 'u.id', 'k.user_id')
      .selectAll('k')
      .select(['o.name as organization_name', 'u.email as user_email', 'u.role as user_role'])
      .where('k.key_hash', '=', hash)
      .where('k.revoked_at', 'is', null)
      .executeTakeFirst();
    if (!row) return undefined;
    const { organization_name, user_email, user_role, ...key } = row;
    return { key, organizationName: organization_name, userEmail: user_email, userRole: user_role };
  }

  listForOrganization(organizationId: string): Promise<ApiKeyRow[]> {
    return this.db
      .selectFrom('api_keys')
      .selectAll()
      .where('kind', '=', 'organization')
      .where('organization_id', '=', organizationId)
      .orderBy('created_at')
      .execute();
  }

  listForUser(userId: string): Promise<ApiKeyRow[]> {
    return this.db
      .selectFrom('api_keys')
      .selectAll()
      .where('kind', '=', 'user')
      .where('user_id', '=', userId)
      .orderBy('created_at')
      .execute();
  }

  /** Any key with this hash, revoked or not. */
  findByHash(hash: string): Promise<ApiKeyRow | undefined> {
    return this.db.selectFrom('api_keys').selectAll().where('key_hash', '=', hash).executeTakeFirst();
  }

  find(id: string): Promise<ApiKeyRow | undefined> {
    return this.db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
  }

  countActivePartnerKeys(): Promise<number> {
    return this.db
      .selectFrom('api_keys')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('kind', '=', 'partner')
      .where('revoked_at', 'is', null)
      .executeTakeFirstOrThrow()
      .then((r) => Number(r.n));
  }

  async insert(row: ApiKeyRow): Promise<void> {
    await this.db.insertInto('api_keys').values(row).execute();
  }

  /**
   * Inserts unless a key with the same hash exists; true when this call inserted it. For keys that come
   * from configuration (the partner key), which several processes may register at once on a shared store.
   */
  async insertIfAbsent(row: ApiKeyRow): Promise<boolean> {
    const r = await this.db
      .insertInto('api_keys')
      .values(row)
      .onConflict((oc) => oc.column('key_hash').doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  /** Revokes every active partner key except the one with this hash; returns how many it revoked. */
  async revokeOtherPartnerKeys(keepHash: string, at: string): Promise<number> {
    const r = await this.db
      .updateTable('api_keys')
      .set({ revoked_at: at })
      .where('kind', '=', 'partner')
      .where('key_hash', '!=', keepHash)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /** Makes a revoked key valid again (only for the partner key that configuration names). */
  async reinstate(id: string): Promise<void> {
    await this.db.updateTable('api_keys').set({ revoked_at: null }).where('id', '=', id).execute();
  }

  async revoke(id: string, at: string): Promise<boolean> {
    const r = await this.db
      .updateTable('api_keys')
      .set({ revoked_at: at })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }
}
