import type { Logger } from 'pino';
import { isAppError } from '../core/errors.js';
import { isoAfter, systemClock, type Clock } from '../core/time.js';
import { qrunVersion } from '../core/version.js';
import type { SecretBox } from '../crypto/secret-box.js';
import { SIGNATURE_HEADER, signatureHeader } from '../crypto/webhook-signature.js';
import { checkUrl, postChecked } from '../net/checked-http.js';
import type { EgressPolicy } from '../net/egress-policy.js';
import type { EndedTask, WebhookDeliveriesRepository } from '../store/repositories/webhook-deliveries.js';
import type { WebhookSecretsRepository } from '../store/repositories/webhook-secrets.js';
import type { CallbackPayload } from '../wire/webhooks.js';
import { errorText } from './page-cleanup.js';

export interface WebhookDelivererDeps {
  deliveries: WebhookDeliveriesRepository;
  secrets: WebhookSecretsRepository;
  /** Opens the sealed signing secrets. */
  secretBox: SecretBox;
  /** Every attempt passes it: resolve once, check every address, dial only those. */
  egress: EgressPolicy;
  log: Logger;
}

export interface WebhookDelivererOptions {
  /** The time deliveries are recorded, claimed, retried and signed by (tests move it forward). */
  clock?: Clock;
  /** Wait after the first failed attempt; doubled after each further one. Default 1 s. */
  retryBaseMs?: number;
  /** The longest wait between two attempts. Default 10 minutes. */
  retryMaxMs?: number;
  /** No attempt starts later than this after the first one. Default an hour. */
  retryWindowMs?: number;
  /** One attempt, connect to status line. Default 10 s. */
  timeoutMs?: number;
  /** How often the loop looks for due deliveries. Default 1 s. */
  pollIntervalMs?: number;
  /** Delivered and abandoned rows are deleted this long after they finished. Default 30 days. */
  retentionMs?: number;
}

const SECOND = 1000;
const HOUR = 3600 * SECOND;
/** Due deliveries looked at per pass, and attempts running at once in one process. */
const BATCH = 50;
const PARALLEL = 8;
/** A claim outlasts its attempt's timeout by this much: then the delivery is due again (its process died). */
const CLAIM_MARGIN_MS = 5 * SECOND;
/** How often the loop looks for ended tasks that have no delivery yet, and how far back the first look goes. */
const RECONCILE_INTERVAL_MS = 10 * SECOND;
const RECONCILE_LOOKBACK_MS = 24 * HOUR;
/** Later looks overlap the previous one by this much (commit delays, clocks of other processes). */
const RECONCILE_OVERLAP_MS = 5 * 60 * SECOND;

/**
 * Delivers `callback_url`s: when a query ends, a signed POST of `{id, status, count, error}` (JSON).
 *
 * Durable: the process that records a task's end (the runner's finish or failure, the sweeper's verdict
 * on a lost worker, a cancel before the query ran) calls `taskEnded` right after, which adds a
 * `webhook_deliveries` row and attempts it at once. A crash between the two loses nothing: this loop also
 * looks for tasks that ended with a callback and have no row, and adds it (the row is keyed by task id,
 * so adding twice is adding once).
 *
 * Retried: a failed attempt (no answer within the timeout, a network error, any status but 2xx) is tried
 * again after 1 s, 2 s, 4 s… (capped at 10 minutes) until an hour after the first attempt; then it is
 * given up. A destination the egress policy refuses is given up at once.
 *
 * Once per attempt across processes: an attempt is claimed by a conditional update (still pending, still
 * due, still at the attempt count this process saw), which moves the next attempt past the attempt's
 * timeout; a process that dies mid-attempt leaves a claim that runs out, and another process tries again.
 */
export class WebhookDeliverer {
  private readonly now: Clock;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly retryWindowMs: number;
  private readonly timeoutMs: number;
  private readonly userAgent = `qrun-webhooks/${qrunVersion()}`;
  private timer: NodeJS.Timeout | undefined;
  private passing: Promise<number> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly stopping = new AbortController();
  /** Ended tasks were looked for up to here (this process's look); undefined before the first. */
  private reconciledUntil: string | undefined;
  private nextReconcile: string | undefined;
  private nextRetention: string | undefined;

  constructor(
    private readonly deps: WebhookDelivererDeps,
    private readonly options: WebhookDelivererOptions = {},
  ) {
    this.now = options.clock ?? systemClock;
    this.retryBaseMs = options.retryBaseMs ?? SECOND;
    this.retryMaxMs = options.retryMaxMs ?? 10 * 60 * SECOND;
    this.retryWindowMs = options.retryWindowMs ?? HOUR;
    this.timeoutMs = options.timeoutMs ?? 10 * SECOND;
  }

  /**
   * Where a task ends: records its delivery (when it has a callback_url) and attempts it in the background.
   * Awaiting it waits for the row, not for the attempt. Never throws: a row that could not be written now
   * is added by the loop's look for ended tasks without one.
   */
  readonly taskEnded = async (taskId: string): Promise<void> => {
    let added: boolean;
    try {
      added = await this.record(taskId);
    } catch (err) {
      this.deps.log.warn({ err, taskId }, 'could not record the callback delivery; the delivery loop will');
      return;
    }
    if (added && !this.stopping.signal.aborted) this.inBackground(this.attempt(taskId, 0));
  };

  start(): void {
    const every = this.options.pollIntervalMs ?? SECOND;
    this.timer = setInterval(() => {
      this.deliverDue().catch((err: unknown) =>
        this.deps.log.error({ err }, 'callback delivery pass failed; will try again'),
      );
    }, every);
    this.timer.unref();
  }

  /** Stops the loop and aborts attempts under way (their claims run out; another process, or the next start, retries). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.stopping.abort();
    await this.passing?.catch(() => undefined);
    await Promise.allSettled([...this.inFlight]);
  }

  /**
   * One pass of the loop: adds the deliveries of ended tasks that have none (every 10 s), deletes old
   * finished ones (hourly), and attempts every due delivery, a few at a time. Resolves with the number of
   * attempts it made, once they are recorded. A pass already under way is joined, not doubled.
   */
  deliverDue(): Promise<number> {
    this.passing ??= this.pass().finally(() => (this.passing = undefined));
    return this.passing;
  }

  private async pass(): Promise<number> {
    const { deliveries, log } = this.deps;
    const now = this.now();
    if (this.nextReconcile === undefined || now >= this.nextReconcile) {
      this.nextReconcile = isoAfter(now, RECONCILE_INTERVAL_MS);
      await this.reconcile(now);
    }
    if (this.nextRetention === undefined || now >= this.nextRetention) {
      this.nextRetention = isoAfter(now, HOUR);
      const before = isoAfter(now, -(this.options.retentionMs ?? 30 * 24 * HOUR));
      const deleted = await deliveries.deleteFinished(before, 1000);
      if (deleted > 0) log.info({ deleted }, 'deleted callback deliveries past their retention');
    }
    let attempts = 0;
    const due = await deliveries.listDue(now, BATCH);
    for (let i = 0; i < due.length && !this.stopping.signal.aborted; i += PARALLEL) {
      const slice = due.slice(i, i + PARALLEL);
      const made = await Promise.all(slice.map((d) => this.attempt(d.task_id, d.attempts)));
      attempts += made.filter(Boolean).length;
    }
    return attempts;
  }

  /** Adds the deliveries that a process which stopped right after ending a task did not get to add. */
  private async reconcile(now: string): Promise<void> {
    const since =
      this.reconciledUntil === undefined
        ? isoAfter(now, -RECONCILE_LOOKBACK_MS)
        : isoAfter(this.reconciledUntil, -RECONCILE_OVERLAP_MS);
    const ids = await this.deps.deliveries.listEndedWithoutDelivery(since, BATCH);
    for (const id of ids) await this.record(id);
    // A full batch may have more behind it: look from the same point again next time.
    if (ids.length < BATCH) this.reconciledUntil = now;
  }

  /** Adds the task's delivery, due now, when it ended with a callback_url; true when this call added it. */
  private async record(taskId: string): Promise<boolean> {
    const task = await this.deps.deliveries.endedTask(taskId);
    if (!task || task.callback_url === null || task.finished_at === null) return false;
    const now = this.now();
    return this.deps.deliveries.insert({
      task_id: task.id,
      organization_id: task.organization_id,
      url: task.callback_url,
      payload: JSON.stringify(payloadOf(task)),
      status: 'pending',
      next_attempt_at: now,
      give_up_at: isoAfter(now, this.retryWindowMs),
      created_at: now,
    });
  }

  private inBackground(work: Promise<unknown>): void {
    const tracked = work.then(
      () => undefined,
      (err: unknown) => this.deps.log.error({ err }, 'callback delivery failed inside qrun; will retry'),
    );
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }

  /** Claims attempt `seenAttempts + 1`, makes it and records the outcome; false when another process had it. */
  private async attempt(taskId: string, seenAttempts: number): Promise<boolean> {
    const { deliveries, log } = this.deps;
    const claimedAt = this.now();
    const row = await deliveries.claim(
      taskId,
      seenAttempts,
      claimedAt,
      isoAfter(claimedAt, this.timeoutMs + CLAIM_MARGIN_MS),
    );
    if (!row) return false;
    const attempt = row.attempts;
    let error: string;
    let refused = false;
    try {
      const url = new URL(row.url);
      // Checked again at every attempt: the name may resolve elsewhere now, and the policy may have changed.
      const destination = await checkUrl(this.deps.egress, url);
      const secrets = await this.signingSecrets(row.organization_id, claimedAt);
      const status = await postChecked({
        url,
        destination,
        body: row.payload,
        headers: {
          'content-type': 'application/json',
          'user-agent': this.userAgent,
          [SIGNATURE_HEADER]: signatureHeader(secrets, row.payload, Math.floor(Date.parse(claimedAt) / 1000)),
        },
        timeoutMs: this.timeoutMs,
        signal: this.stopping.signal,
      });
      if (status >= 200 && status < 300) {
        await deliveries.recordDelivered(taskId, attempt, this.now());
        return true;
      }
      error = `the receiver answered HTTP ${status}`;
    } catch (err) {
      // Shutting down: leave the claim to run out, so that another process or the next start tries again.
      if (this.stopping.signal.aborted) return true;
      refused = isAppError(err) && err.key === 'host_not_allowed';
      error = errorText(err);
    }
    const now = this.now();
    const next = isoAfter(now, Math.min(this.retryBaseMs * 2 ** (attempt - 1), this.retryMaxMs));
    const giveUp = refused || next > row.give_up_at;
    await deliveries.recordFailed(taskId, attempt, error, now, giveUp ? undefined : next);
    if (giveUp) {
      log.warn({ taskId, attempts: attempt, error }, 'callback not delivered; giving up');
    } else {
      log.info({ taskId, attempt, error, next }, 'callback attempt failed; will retry');
    }
    return true;
  }

  /** The organization's current secret, and the previous one while it still signs. */
  private async signingSecrets(organizationId: string, now: string): Promise<string[]> {
    const row = await this.deps.secrets.find(organizationId);
    if (!row) throw new Error('the organization has no webhook secret (POST /api/webhook_secret)');
    const secrets = [this.deps.secretBox.open(row.secret)];
    if (row.previous_secret !== null && row.previous_expires_at !== null && now < row.previous_expires_at) {
      secrets.push(this.deps.secretBox.open(row.previous_secret));
    }
    return secrets;
  }
}

/** The callback's body: what a poll would say, in brief. */
export function payloadOf(task: EndedTask): CallbackPayload {
  return {
    id: task.id,
    // An ended task (finished_at set) is done or failed.
    status: task.status as CallbackPayload['status'],
    count: task.status === 'done' ? task.row_count : null,
    error: task.status === 'done' ? null : task.error,
  };
}
