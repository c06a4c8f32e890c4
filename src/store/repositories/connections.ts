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
      Pick<
        ConnectionRow,
        | 'name'
        | 'configuration'
        | 'status'
        | 'status_error'
        | 'updated_at'
        | 'updated_by'
        | 'healthcheck_interval_seconds'
        | 'healthcheck_due_at'
      >
    >,
  ): Promise<void> {
    await this.db.updateTable('connections').set(changes).where('id', '=', id).execute();
  }

  /**
   * How many queries each of these connections was sent since `since` (RFC 3339), by anyone: the
   * `api_calls_last_24_hours` of the API. Connections without any are absent from the map.
   */
  async queryCountsSince(connectionIds: readonly string[], since: string): Promise<Map<string, number>> {
    if (connectionIds.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('query_tasks')
      .select(['connection_id', (eb) => eb.fn.countAll<number>().as('n')])
      .where('connection_id', 'in', connectionIds)
      .where('created_at', '>=', since)
      .groupBy('connection_id')
      .execute();
    return new Map(rows.map((r) => [r.connection_id, Number(r.n)]));
  }

  // ---- the periodic health check ----

  /** Connections whose check is due at `now` and that no process is checking, the longest due first. */
  async listHealthchecksDue(now: string, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('connections')
      .select('id')
      .where('healthcheck_due_at', '<=', now)
      .where((eb) =>
        eb.or([eb('healthcheck_running_until', 'is', null), eb('healthcheck_running_until', '<=', now)]),
      )
      .orderBy('healthcheck_due_at')
      .limit(limit)
      .execute();
    return rows.map((r) => r.id);
  }

  /**
   * Claims the due check of one connection until `until` and returns the row as claimed: for exactly one
   * of any number of processes asking at once (a conditional update); undefined while another's claim
   * runs, when the check is not due, or when the connection has no interval (any more).
   */
  async claimHealthcheck(id: string, now: string, until: string): Promise<ConnectionRow | undefined> {
    const r = await this.db
      .updateTable('connections')
      .set({ healthcheck_running_until: until })
      .where('id', '=', id)
      .where('healthcheck_interval_seconds', 'is not', null)
      .where('healthcheck_due_at', '<=', now)
      .where((eb) =>
        eb.or([eb('healthcheck_running_until', 'is', null), eb('healthcheck_running_until', '<=', now)]),
      )
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return undefined;
    return this.findById(id);
  }

  /**
   * Records a check's outcome and when the next is due, and ends the claim: only while the claim is still
   * this one (`until`) and the configuration is still the one checked. Otherwise only the claim ends (a
   * changed configuration was tested when it was saved). Returns whether the outcome was recorded.
   */
  async finishHealthcheck(
    id: string,
    until: string,
    configuration: string,
    outcome: { status: string; status_error: string | null; healthcheck_due_at: string },
  ): Promise<boolean> {
    const r = await this.db
      .updateTable('connections')
      .set({ ...outcome, healthcheck_running_until: null })
      .where('id', '=', id)
      .where('healthcheck_running_until', '=', until)
      .where('configuration', '=', configuration)
      .where('healthcheck_interval_seconds', 'is not', null)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 1) return true;
    await this.db
      .updateTable('connections')
      .set({ healthcheck_running_until: null })
      .where('id', '=', id)
      .where('healthcheck_running_until', '=', until)
      .execute();
    return false;
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
