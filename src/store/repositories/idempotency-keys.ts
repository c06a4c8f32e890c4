import type { Db } from '../database.js';
import type { IdempotencyKeysTable } from '../schema.js';

export type IdempotencyRow = IdempotencyKeysTable;

/** Idempotency records: one per (caller, key), first writer wins through the primary key. */
export class IdempotencyKeysRepository {
  constructor(private readonly db: Db) {}

  find(owner: string, key: string): Promise<IdempotencyRow | undefined> {
    return this.db
      .selectFrom('idempotency_keys')
      .selectAll()
      .where('owner', '=', owner)
      .where('key', '=', key)
      .executeTakeFirst();
  }

  /** Inserts a pending record; false if one already exists (the primary key decides, even across processes). */
  async tryInsertPending(
    row: Omit<IdempotencyRow, 'state' | 'response_status' | 'response_body'>,
  ): Promise<boolean> {
    const r = await this.db
      .insertInto('idempotency_keys')
      .values({ ...row, state: 'pending', response_status: null, response_body: null })
      .onConflict((oc) => oc.columns(['owner', 'key']).doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  async complete(owner: string, key: string, status: number, body: string): Promise<void> {
    await this.db
      .updateTable('idempotency_keys')
      .set({ state: 'done', response_status: status, response_body: body })
      .where('owner', '=', owner)
      .where('key', '=', key)
      .execute();
  }

  async delete(owner: string, key: string): Promise<void> {
    await this.db.deleteFrom('idempotency_keys').where('owner', '=', owner).where('key', '=', key).execute();
  }

  async deleteExpired(now: string): Promise<number> {
    const r = await this.db.deleteFrom('idempotency_keys').where('expires_at', '<', now).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
