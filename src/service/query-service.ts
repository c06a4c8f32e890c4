import { LRUCache } from 'lru-cache';
import { ownerOf, type Principal } from '../auth/principal.js';
import type { ParameterValue } from '../connectors/connector.js';
import { AppError, badRequest, conflict, forbidden, notFound, rejectNul } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { isoAfter, systemClock, toWireTime, type Clock } from '../core/time.js';
import type { Dispatcher } from '../dispatch/dispatcher.js';
import type { PageTokens } from '../encoding/page-token.js';
import type { PageFrame } from '../encoding/page-frame.js';
import type { ProgressStore } from '../events/progress-store.js';
import type { TaskEvents } from '../events/task-events.js';
import type { ResultStore } from '../results/result-store.js';
import type { ConnectionsRepository } from '../store/repositories/connections.js';
import type { IdempotencyKeysRepository } from '../store/repositories/idempotency-keys.js';
import {
  LIST_SQL_PREVIEW,
  type QueryTaskListItem,
  type QueryTaskView,
  type QueryTasksRepository,
} from '../store/repositories/query-tasks.js';
import { expiredMessage, isTerminal, qrunErrorDetails, type ErrorDetails } from '../core/task-status.js';
import type { CanceledQuery, Progress, QuerySummary, SubmittedQuery } from '../wire/queries.js';
import { requestHash, withIdempotency } from './idempotency.js';
import type { QueryEvent } from '../wire/query-events.js';
import { finalEvent, followQuery } from './query-events.js';
import type { WebhookService } from './webhook-service.js';

export interface SubmitInput {
  connectionId: string;
  /** From the JSON body. */
  bodyQuery?: string;
  /** From the URL parameter `?query=`. */
  urlQuery?: string;
  parameters?: ParameterValue[];
  timeoutSeconds?: number;
  maxRows?: number;
  /** Rows per result page (`page_rows`); QRUN_PAGE_ROWS when absent. */
  pageRows?: number;
  /** Where to POST the signed outcome when the query ends (checked: WebhookService.checkCallbackUrl). */
  callbackUrl?: string;
  idempotencyKey?: string;
}

export interface QueryServiceOptions {
  maxQueryBytes: number;
  queryTimeoutSeconds: number;
  /** QRUN_PAGE_ROWS_MAX: the largest `page_rows` a submit may ask for. */
  pageRowsMax: number;
  /** QRUN_RESULT_TTL_SECONDS: how long a query canceled before it ran keeps answering `failed`. */
  resultTtlSeconds: number;
  /** An organization's unfinished (waiting + running) queries beyond which a submit gets 429. */
  organizationMaxQueued: number;
  /**
   * Long-polls one API key may hold open at once in this process; beyond it a `wait` answers at once
   * with the current status, as if the time were up.
   */
  maxWaitsPerKey: number;
  clock?: Clock;
}

/** One page of a finished result, as the caller frames it (the HTTP layer: result-envelope.ts). */
export interface FinishedResult {
  id: string;
  /** The JSON array of field names, as stored. */
  fieldsJson: string;
  /** The JSON array of {name, type}, as stored. */
  schemaJson: string;
  count: number;
  truncated: boolean;
  expires: string;
  /** Signed tokens of the neighbouring pages; null at the ends. */
  nextPage: string | null;
  previousPage: string | null;
}

/** Builds the bytes around a finished result's page; the stored page is read into the space between. */
export type FrameBuilder = (result: FinishedResult) => PageFrame;

/**
 * What a status read answers. A finished result is the caller's frame with this page's rows read into it.
 * A finished query past its `expires` is no view but a 404 `expired`.
 */
export type QueryResultView =
  | { id: string; status: 'created'; queue_position: number }
  | { id: string; status: 'running'; progress: Progress }
  | { id: string; status: 'failed'; error: string; error_details: ErrorDetails | null }
  | {
      id: string;
      status: 'done';
      /** head ‖ the page's stored rows, unparsed ‖ tail. */
      body: Buffer;
    };

const MAX_WAIT_SECONDS = 60;
const FINISHED_CACHE_MAX = 10_000;
/** The finished-task cache's budget: fields and schema are as long as a result is wide. */
const FINISHED_CACHE_BYTES = 32 * 1024 * 1024;
const FINISHED_CACHE_TTL_MS = 10 * 60 * 1000;

/** Submitting queries and reading their status and results. No HTTP here: the CLI can use it too. */
export class QueryService {
  /**
   * A terminal task never changes in a way a reader could see: expiry is computed at read time and a
   * missing page reads as expired. So finished tasks are kept in memory, and serving a page costs no
   * metadata query. Bounded in entries and in bytes (least recently used out first).
   */
  private readonly finished = new LRUCache<string, QueryTaskView>({
    max: FINISHED_CACHE_MAX,
    maxSize: FINISHED_CACHE_BYTES,
    sizeCalculation: viewBytes,
    // Retention deletes task rows in the end (QRUN_TASK_RETENTION_DAYS); a cached copy must not outlive that by much.
    ttl: FINISHED_CACHE_TTL_MS,
  });
  /** Long-polls and event streams open per API key in this process. */
  private readonly waits = new Map<string, number>();
  /** Event streams open in this process. */
  private streams = 0;
  private readonly now: Clock;

  constructor(
    private readonly deps: {
      tasks: QueryTasksRepository;
      connections: ConnectionsRepository;
      idempotency: IdempotencyKeysRepository;
      dispatcher: Dispatcher;
      events: TaskEvents;
      results: ResultStore;
      pageTokens: PageTokens;
      /** Running queries' rows, pages and bytes stored so far (written by the runner). */
      progress: ProgressStore;
      /** Checks a submit's callback_url (the organization's secret, the egress policy). */
      callbacks: Pick<WebhookService, 'checkCallbackUrl'>;
      /** Where a task ends here (a cancel before it ran): records its callback delivery. Never throws. */
      taskEnded?: (taskId: string) => Promise<void>;
    },
    private readonly options: QueryServiceOptions,
  ) {
    this.now = options.clock ?? systemClock;
  }

  async submit(p: Principal, input: SubmitInput): Promise<SubmittedQuery> {
    const organizationId = requireMember(p);
    const sql = this.queryText(input);
    const parameters = input.parameters ?? [];
    const timeoutSeconds = input.timeoutSeconds ?? this.options.queryTimeoutSeconds;
    if (timeoutSeconds > this.options.queryTimeoutSeconds) {
      throw badRequest(
        'invalid_timeout',
        `timeout_seconds may be at most ${this.options.queryTimeoutSeconds} on this server.`,
        { field: 'body.timeout_seconds' },
      );
    }
    if (input.pageRows !== undefined && input.pageRows > this.options.pageRowsMax) {
      throw badRequest(
        'invalid_page_rows',
        `page_rows may be at most ${this.options.pageRowsMax} on this server.`,
        { field: 'body.page_rows' },
      );
    }
    const owner = ownerOf(p);
    const hash = requestHash({
      connection: input.connectionId,
      sql,
      parameters,
      timeout: input.timeoutSeconds ?? null,
      maxRows: input.maxRows ?? null,
      // Only when given, so that keys recorded before page_rows existed still match their retries.
      ...(input.pageRows === undefined ? {} : { pageRows: input.pageRows }),
      // Only when given, so the hashes of requests without one stay what they were.
      ...(input.callbackUrl === undefined ? {} : { callbackUrl: input.callbackUrl }),
    });

    const submitted = await withIdempotency(
      this.deps.idempotency,
      owner,
      input.idempotencyKey,
      hash,
      async () => {
        const connection = await this.deps.connections.find(organizationId, input.connectionId);
        if (!connection) throw notFound('connection', input.connectionId);
        const callbackUrl =
          input.callbackUrl === undefined
            ? null
            : await this.deps.callbacks.checkCallbackUrl(organizationId, input.callbackUrl);
        // Checked before the insert, so concurrent submits may overshoot by a few; the point is that one
        // organization cannot fill the instance's queue, not an exact count.
        const unfinished = await this.deps.tasks.countUnfinished(organizationId);
        const max = this.options.organizationMaxQueued;
        if (unfinished.created + unfinished.running >= max) {
          throw new AppError(
            429,
            'too_many_queries',
            `Your organization has ${unfinished.created + unfinished.running} queries waiting or running, the most ` +
              `this server allows at once (${max}); submit more once some have finished.`,
            { headers: { 'retry-after': '5' }, metadata: { limit: max } },
          );
        }
        // 503 storage_full while the result volume is short of QRUN_MIN_FREE_BYTES: nothing is created.
        await this.deps.results.assertRoom();
        const id = newId();
        await this.deps.tasks.insert({
          id,
          organization_id: organizationId,
          owner,
          connection_id: connection.id,
          sql,
          parameters: JSON.stringify(parameters),
          timeout_seconds: timeoutSeconds,
          max_rows: input.maxRows ?? null,
          page_rows: input.pageRows ?? null,
          status: 'created',
          error: null,
          error_details: null,
          fields: null,
          schema: null,
          row_count: null,
          page_count: null,
          truncated: 0,
          worker_id: null,
          lease_expires_at: null,
          cancel_requested: 0,
          created_at: this.now(),
          started_at: null,
          finished_at: null,
          expires_at: null,
          pages_until: null,
          callback_url: callbackUrl,
        });
        try {
          await this.deps.dispatcher.enqueue({
            taskId: id,
            connectionId: connection.id,
            organizationId,
            position: unfinished.created + 1,
          });
        } catch (err) {
          // Not queued means not accepted: leave nothing behind, so a retry cannot run it twice.
          await this.deps.tasks.delete(id);
          throw err;
        }
        return { id, status: 'created' } as const;
      },
      this.now,
    );
    // Replays of records kept before 2026-11-30 carry the whole response body; they expire within 24 h.
    return 'data' in submitted ? (submitted as unknown as { data: SubmittedQuery }).data : submitted;
  }

  /** Long-polls open in this process, over all keys (for metrics and tests). */
  get longPollsOpen(): number {
    let open = 0;
    for (const n of this.waits.values()) open += n;
    return open;
  }

  /** Status, and for finished queries one page of the result. `wait` long-polls for a terminal status. */
  async get(
    p: Principal,
    id: string,
    pageToken: string | undefined,
    waitSeconds: number | undefined,
    frame: FrameBuilder,
  ): Promise<QueryResultView> {
    let task = await this.load(p, id);
    const page = pageToken === undefined ? 0 : this.deps.pageTokens.verify(id, pageToken);
    if (waitSeconds !== undefined && waitSeconds > 0 && !isTerminal(task.status)) {
      const key = p.keyId;
      const open = this.waits.get(key) ?? 0;
      // Over the cap, answer now with the current status: a client that polls again loses nothing.
      if (open < this.options.maxWaitsPerKey) {
        this.waits.set(key, open + 1);
        try {
          task = await this.waitForTerminal(task, Math.min(waitSeconds, MAX_WAIT_SECONDS));
        } finally {
          const left = (this.waits.get(key) ?? 1) - 1;
          if (left === 0) this.waits.delete(key);
          else this.waits.set(key, left);
        }
      }
    }
    return this.view(task, page, frame);
  }

  /** Event streams open in this process (GET /api/queries/{id}/events), over all keys. */
  get eventStreamsOpen(): number {
    return this.streams;
  }

  /**
   * The query's events until it ends, for Server-Sent Events (src/service/query-events.ts; the HTTP layer
   * frames them). Only its creator may follow it: anyone else gets 404 here, before anything is sent, and
   * an expired result its 404 `expired`. Streams count against the long-poll cap (QRUN_MAX_WAITS_PER_KEY):
   * over it, a stream is the one status event. Aborting `signal` (the client went away) ends it.
   */
  async events(p: Principal, id: string, signal: AbortSignal): Promise<AsyncIterable<QueryEvent>> {
    const task = await this.load(p, id);
    if (isTerminal(task.status) && task.expires_at !== null && task.expires_at <= this.now()) {
      throw expired(task.expires_at);
    }
    const key = p.keyId;
    return followQuery(
      task,
      {
        reread: (taskId) => this.deps.tasks.findView(taskId),
        events: this.deps.events,
        progressOf: (running) => this.progressOf(running),
        final: finalEvent,
        hold: () => {
          const open = this.waits.get(key) ?? 0;
          if (open >= this.options.maxWaitsPerKey) return false;
          this.waits.set(key, open + 1);
          this.streams++;
          return true;
        },
        release: () => {
          this.streams--;
          const left = (this.waits.get(key) ?? 1) - 1;
          if (left === 0) this.waits.delete(key);
          else this.waits.set(key, left);
        },
      },
      signal,
    );
  }

  async cancel(p: Principal, id: string): Promise<CanceledQuery> {
    let task = await this.load(p, id);
    if (isTerminal(task.status)) {
      throw conflict(
        'query_finished',
        `The query already finished (${task.status}); there is nothing to cancel.`,
      );
    }
    const now = this.now();
    const expires = isoAfter(now, this.options.resultTtlSeconds * 1000);
    const canceled = qrunErrorDetails('canceled');
    // The store records the cancel; the wake-up only makes it faster (a worker also sees the flag at its
    // next heartbeat), so a wake-up lost to a Redis outage must not fail the request.
    if (
      task.status === 'created' &&
      (await this.deps.tasks.cancelCreated(id, 'canceled', canceled, now, expires))
    ) {
      await this.deps.taskEnded?.(id);
      await this.deps.events.publishFinished(id).catch(() => undefined);
    } else if (await this.deps.tasks.requestCancel(id)) {
      await this.deps.events.publishCancel(id).catch(() => undefined);
    }
    // Answer with the outcome when it comes quickly, which it does unless the database ignores the cancel.
    task = await this.waitForTerminal(await this.load(p, id), 10);
    return { id, status: task.status, error: task.error, error_details: errorDetailsOf(task) };
  }

  async list(
    p: Principal,
    limit: number,
    cursor: string | undefined,
  ): Promise<{ items: QuerySummary[]; next: string | null }> {
    requireMember(p);
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    const rows = await this.deps.tasks.listByOwner(ownerOf(p), limit + 1, after);
    const items = rows.slice(0, limit).map(summarize);
    const last = rows.length > limit ? rows[limit - 1] : undefined;
    return { items, next: last ? encodeCursor(last) : null };
  }

  // ---- helpers ----

  private queryText(input: SubmitInput): string {
    const { bodyQuery, urlQuery } = input;
    if (bodyQuery !== undefined && urlQuery !== undefined && bodyQuery !== urlQuery) {
      throw badRequest(
        'query_conflict',
        'The SQL was given both in the body and in the URL parameter "query", and they differ; send it once.',
      );
    }
    const sql = bodyQuery ?? urlQuery;
    if (sql === undefined || sql.trim() === '') {
      throw badRequest('query_required', 'A query is required: send {"query": "<sql>"} or ?query=<sql>.');
    }
    rejectNul(sql, 'query');
    const bytes = Buffer.byteLength(sql, 'utf8');
    if (bytes > this.options.maxQueryBytes) {
      throw new AppError(
        413,
        'query_too_large',
        `The query is ${bytes} bytes; this server accepts at most ${this.options.maxQueryBytes}.`,
      );
    }
    return sql;
  }

  /** Only the creator may see a query: anyone else gets the same 404 as for an id that does not exist. */
  private async load(p: Principal, id: string): Promise<QueryTaskView> {
    const cached = this.finished.get(id);
    const task = cached ?? (await this.deps.tasks.findView(id));
    if (!task || task.owner !== ownerOf(p)) throw notFound('query', id);
    if (!cached && isTerminal(task.status)) this.finished.set(task.id, task);
    return task;
  }

  /**
   * Waits until the task is terminal or the time is up. Wake-ups only shorten the wait: the store is
   * re-read after every wake-up and at least once a second, so a lost wake-up costs at most a second.
   */
  private async waitForTerminal(task: QueryTaskView, seconds: number): Promise<QueryTaskView> {
    if (isTerminal(task.status)) return task;
    const deadline = Date.now() + seconds * 1000;
    let signaled = false;
    let wake: (() => void) | undefined;
    const unsubscribe = this.deps.events.onFinished(task.id, () => {
      signaled = true;
      wake?.();
    });
    try {
      let current = task;
      for (;;) {
        signaled = false;
        current = (await this.deps.tasks.findView(task.id)) ?? current;
        const left = deadline - Date.now();
        if (isTerminal(current.status) || left <= 0) return current;
        if (signaled) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 1000));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    } finally {
      unsubscribe();
    }
  }

  private async view(task: QueryTaskView, page: number, frameFor: FrameBuilder): Promise<QueryResultView> {
    const { id } = task;
    switch (task.status) {
      case 'created':
        return { id, status: 'created', queue_position: await this.deps.tasks.countWaitingAhead(task) };
      case 'running':
        return { id, status: 'running', progress: await this.progressOf(task) };
    }
    // A finished query is gone from the moment it expires, whether or not the sweeper has run yet.
    if (task.expires_at !== null && task.expires_at <= this.now()) throw expired(task.expires_at);
    if (task.status === 'failed') {
      return {
        id,
        status: 'failed',
        error: task.error ?? 'failed',
        // Null only for failures recorded before error_details existed (and not classed by migration 0005).
        error_details: errorDetailsOf(task),
      };
    }
    const pageCount = task.page_count ?? 0;
    if (page >= Math.max(pageCount, 1)) {
      throw badRequest('invalid_page_token', 'The page token points past the end of this result.');
    }
    const frame = frameFor({
      id,
      fieldsJson: task.fields ?? '[]',
      schemaJson: task.schema ?? '[]',
      count: task.row_count ?? 0,
      truncated: task.truncated === 1,
      expires: toWireTime(task.expires_at!),
      nextPage: page + 1 < pageCount ? this.deps.pageTokens.sign(id, page + 1) : null,
      previousPage: page > 0 ? this.deps.pageTokens.sign(id, page - 1) : null,
    });
    const body =
      pageCount === 0
        ? Buffer.concat([frame.head, Buffer.from('[]'), frame.tail])
        : await this.deps.results.getPage(id, page, frame);
    // The pages are gone before `expires` (deleted by hand, a store that lost them): as good as expired.
    if (!body) throw expired(task.expires_at!);
    return { id, status: 'done', body };
  }

  /** A running query's progress: what the runner has stored so far, and the time since it started. */
  async progressOf(task: Pick<QueryTaskView, 'id' | 'started_at'>): Promise<Progress> {
    const stored = await this.deps.progress.get(task.id);
    const started = task.started_at === null ? NaN : Date.parse(task.started_at);
    const elapsed = Date.parse(this.now()) - started;
    return {
      rows: stored?.rows ?? 0,
      pages: stored?.pages ?? 0,
      bytes: stored?.bytes ?? 0,
      elapsed_ms: Number.isFinite(elapsed) ? Math.max(0, Math.round(elapsed)) : 0,
    };
  }
}

function expired(expiresAt: string): AppError {
  const expires = toWireTime(expiresAt);
  return new AppError(404, 'expired', expiredMessage(expires), { metadata: { expires } });
}

/** The stored error_details of a failed task; null for any other (and for one recorded without them). */
function errorDetailsOf(task: Pick<QueryTaskView, 'status' | 'error_details'>): ErrorDetails | null {
  if (task.status !== 'failed' || task.error_details === null) return null;
  return JSON.parse(task.error_details) as ErrorDetails;
}

function requireMember(p: Principal): string {
  if (p.kind === 'partner') {
    throw forbidden('The partner key manages organizations; use a user or organization key to run queries.');
  }
  return p.organizationId;
}

function summarize(t: QueryTaskListItem): QuerySummary {
  const sql = t.sql_preview;
  return {
    id: t.id,
    status: t.status,
    connection_id: t.connection_id,
    query: sql.length > LIST_SQL_PREVIEW ? `${sql.slice(0, LIST_SQL_PREVIEW)}…` : sql,
    count: t.status === 'done' ? t.row_count : null,
    error: t.error,
    error_details: errorDetailsOf(t),
    created_at: toWireTime(t.created_at),
    started_at: t.started_at ? toWireTime(t.started_at) : null,
    finished_at: t.finished_at ? toWireTime(t.finished_at) : null,
    expires: t.expires_at ? toWireTime(t.expires_at) : null,
  };
}

/** About what a cached view costs: its text columns, two bytes a character, plus the fixed fields. */
function viewBytes(t: QueryTaskView): number {
  return (
    512 +
    2 *
      ((t.fields?.length ?? 0) +
        (t.schema?.length ?? 0) +
        (t.error?.length ?? 0) +
        (t.error_details?.length ?? 0))
  );
}

function encodeCursor(t: QueryTaskView): string {
  return Buffer.from(`${t.created_at}|${t.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\|([0-9a-f-]{36})$/.exec(decoded);
  if (!m)
    throw badRequest('invalid_cursor', 'The cursor is not valid; follow links.next from the first page.');
  return { createdAt: m[1]!, id: m[2]! };
}
