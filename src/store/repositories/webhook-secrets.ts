import type { Db } from '../database.js';
import type { WebhookSecretsTable } from '../schema.js';

export type WebhookSecretRow = WebhookSecretsTable;

/** Each organization's webhook signing secret, sealed, and the one before it while it still signs. */
export class WebhookSecretsRepository {
  constructor(private readonly db: Db) {}

  find(organizationId: string): Promise<WebhookSecretRow | undefined> {
    return this.db
      .selectFrom('webhook_secrets')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .executeTakeFirst();
  }

  async exists(organizationId: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('webhook_secrets')
      .select('organization_id')
      .where('organization_id', '=', organizationId)
      .executeTakeFirst();
    return row !== undefined;
  }

  /**
   * Creates the organization's secret, or rotates it: the current one becomes the previous one (until
   * `previousUntil`) and `sealed` the current one. One statement: the right-hand sides read the row as it
   * was, so two rotations at once each move a real secret to `previous`, never a half-written one.
   */
  async rotate(organizationId: string, sealed: string, now: string, previousUntil: string): Promise<void> {
    await this.db
      .insertInto('webhook_secrets')
      .values({
        organization_id: organizationId,
        secret: sealed,
        previous_secret: null,
        previous_expires_at: null,
        created_at: now,
        rotated_at: now,
      })
      .onConflict((oc) =>
        oc.column('organization_id').doUpdateSet((eb) => ({
          previous_secret: eb.ref('webhook_secrets.secret'),
          previous_expires_at: previousUntil,
          secret: eb.ref('excluded.secret'),
          rotated_at: now,
        })),
      )
      .execute();
  }

  /** Every sealed value's text, for the start-up check that the secrets key can open them. */
  async sealedValues(): Promise<string[]> {
    const rows = await this.db.selectFrom('webhook_secrets').select(['secret', 'previous_secret']).execute();
    return rows.flatMap((r) => (r.previous_secret === null ? [r.secret] : [r.secret, r.previous_secret]));
  }
}
