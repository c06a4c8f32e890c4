import type { Logger } from 'pino';
import { CONNECTION_STATUS, testConnectionWithin } from '../connectors/connection-check.js';
import type { ConnectionResolver } from '../connectors/connection-resolver.js';
import { isoAfter, nowIso } from '../core/time.js';
import type { ConnectionsRepository } from '../store/repositories/connections.js';

/** Connections looked at per call of startDue. */
const BATCH = 100;
/** Checks running at once in one process. */
const DEFAULT_CONCURRENCY = 2;
/**
 * How long a claim keeps other processes off a connection: beyond the test's own timeout (20 s), so a
 * check that is still running is never duplicated, and short enough that a dead process's claim soon lapses.
 */
const CLAIM_MS = 60_000;

export interface ConnectionHealthOptions {
  /** The clock (RFC 3339 text, as the store keeps times). Default: the real one. */
  now?: () => string;
  /** Checks running at once in this process. Default 2. */
  concurrency?: number;
}

/**
 * The periodic connection check of `healthcheck_interval`: for every connection whose check is due, one
 * process at a time (a conditional update claims it: ConnectionsRepository.claimHealthcheck) connects
 * with the stored configuration, runs the trivial query, and records `status` (`healthy` or `unhealthy`)
 * and `status_error` (the database's message, secrets removed), and when the next check is due.
 *
 * The sweeper calls startDue() at every sweep, in every process; the checks run beside the sweep, a few
 * at a time, so a slow database holds up neither the sweep nor the other checks for long.
 */
export class ConnectionHealthChecks {
  private readonly running = new Set<Promise<void>>();
  private readonly now: () => string;
  private closed = false;

  constructor(
    private readonly deps: { connections: ConnectionsRepository; resolver: ConnectionResolver; log: Logger },
    private readonly options: ConnectionHealthOptions = {},
  ) {
    this.now = options.now ?? nowIso;
  }

  /** Claims due checks while this process has room for them and starts them; resolves once they are started. */
  async startDue(): Promise<void> {
    const room = (this.options.concurrency ?? DEFAULT_CONCURRENCY) - this.running.size;
    if (this.closed || room <= 0) return;
    const now = this.now();
    let started = 0;
    for (const id of await this.deps.connections.listHealthchecksDue(now, BATCH)) {
      if (started >= room || this.closed) break;
      const until = isoAfter(now, CLAIM_MS);
      const row = await this.deps.connections.claimHealthcheck(id, now, until);
      if (!row) continue; // another process has it, or it changed since the listing
      started++;
      const check = this.check(row.id, row.configuration, row.healthcheck_interval_seconds ?? 0, until)
        .catch((err: unknown) => this.deps.log.error({ err, connectionId: id }, 'connection check failed'))
        .finally(() => this.running.delete(check));
      this.running.add(check);
    }
  }

  /** Resolves when the checks started so far have ended (for tests, and for close). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Starts no more checks and waits for those running (each ends within the test's timeout). */
  async close(): Promise<void> {
    this.closed = true;
    await this.idle();
  }

  private async check(
    id: string,
    configuration: string,
    intervalSeconds: number,
    until: string,
  ): Promise<void> {
    const { connections, resolver, log } = this.deps;
    const row = await connections.findById(id);
    if (!row) return; // deleted since the claim
    let status_error: string | null = null;
    try {
      const resolved = resolver.resolve({ ...row, configuration });
      await testConnectionWithin(
        resolved.connector,
        resolved.config,
        resolver.contextFor(row.organization_id),
      );
    } catch (err) {
      // Refused by the egress policy (an AppError), or the database's message with the secrets removed.
      status_error = err instanceof Error ? err.message : String(err);
    }
    const recorded = await connections.finishHealthcheck(id, until, configuration, {
      status: status_error === null ? CONNECTION_STATUS.healthy : CONNECTION_STATUS.unhealthy,
      status_error,
      healthcheck_due_at: isoAfter(this.now(), Math.max(intervalSeconds, 1) * 1000),
    });
    if (recorded && status_error !== null) {
      log.warn(
        { connectionId: id, organizationId: row.organization_id },
        'connection check failed: unhealthy',
      );
    }
  }
}
