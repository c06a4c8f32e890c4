import type { Logger } from 'pino';
import type { Metrics } from '../core/metrics.js';
import { DatabaseError, QueryAbortedError } from '../connectors/connector.js';
import { scrubMessage } from '../connectors/config-fields.js';
import { formatBytes } from '../core/bytes.js';
import { isoAfter, nowIso } from '../core/time.js';
import { uniqueFieldNames } from '../encoding/field-names.js';
import {
  PageWriter,
  ROW_ADDED,
  ResultTooLargeError,
  RowTooLargeError,
  type PageWriterSummary,
} from '../encoding/page-writer.js';
import { createRowEncoder } from '../encoding/row-encoder.js';
import type { ProgressStore, TaskProgress } from '../events/progress-store.js';
import type { TaskEvents } from '../events/task-events.js';
import { isStorageFull, type ResultStore } from '../results/result-store.js';
import type { ConnectionResolver, ResolvedConnection } from '../connectors/connection-resolver.js';
import type { ConnectionsRepository } from '../store/repositories/connections.js';
import type { PageDeletionsRepository } from '../store/repositories/page-deletions.js';
import type { QueryTaskRow, QueryTasksRepository } from '../store/repositories/query-tasks.js';
import { qrunErrorDetails, type ErrorDetails } from '../core/task-status.js';
import { abortDetails, abortMessage, abortReason, type AbortReason } from './abort-reasons.js';
import { deletePages } from './page-cleanup.js';

export interface QueryRunnerOptions {
  workerId: string;
  /** QRUN_PAGE_ROWS: rows per page of a task submitted without page_rows. */
  pageRows: number;
  pageBytes: number;
  /** QRUN_MAX_RESULT_BYTES: the most a result's pages may add up to. */
  maxResultBytes: number;
  leaseSeconds: number;
  resultTtlSeconds: number;
}

export interface QueryRunnerDeps {
  tasks: QueryTasksRepository;
  connectionRows: ConnectionsRepository;
  /** Opens the stored connection a task runs on (secrets, files and network of its organization). */
  resolver: ConnectionResolver;
  results: ResultStore;
  /** Where a page delete that failed is queued for the sweeper to retry. */
  pageDeletions: PageDeletionsRepository;
  events: TaskEvents;
  /** Where the rows, pages and bytes stored so far go after every page (GET /api/queries/{id} reads them). */
  progress: ProgressStore;
  metrics: Metrics;
  log: Logger;
  /** Called once a task's end is recorded: adds its callback delivery (WebhookDeliverer.taskEnded). Never throws. */
  taskEnded?: (taskId: string) => Promise<void>;
}

/** Rows asked of the driver at a time: enough to amortize round trips, small enough to keep memory flat. */
const MAX_BATCH_ROWS = 5000;

/**
 * Pages being stored while the next ones are read and encoded. Storing a page (open, write, datasync,
 * rename) waits on the disk, not the CPU; overlapping it with reading and encoding cut ingest time by
 * 11% (PostgreSQL) and 21% (MariaDB) (docs/PERFORMANCE.md). Memory: at most this many pages
 * (QRUN_PAGE_BYTES each) beyond the open one.
 */
const PAGE_WRITES_IN_FLIGHT = 4;

/**
 * Runs one claimed task end to end: stream rows from the database, encode them, cut them into pages,
 * store each page as it fills (and its progress), then record the outcome. Holds a lease while it works
 * (renewed by a heartbeat), so a dead worker's task is found by the sweeper and ends `failed` (`lost`).
 */
export class QueryRunner {
  private readonly active = new Map<string, AbortController>();
  /** What each running task has stored so far, re-sent with every heartbeat (it renews the entry's TTL). */
  private readonly stored = new Map<string, TaskProgress>();
  private readonly stopListening: () => void;

  constructor(
    private readonly deps: QueryRunnerDeps,
    private readonly options: QueryRunnerOptions,
  ) {
    this.stopListening = deps.events.onCancel((taskId) => this.abort(taskId, { kind: 'canceled' }));
  }

  get runningCount(): number {
    return this.active.size;
  }

  /** The dispatcher's task handler. Never throws: every outcome is recorded on the task. */
  readonly run = async (dispatched: { taskId: string }): Promise<void> => {
    const { tasks, log } = this.deps;
    const { workerId } = this.options;
    const id = dispatched.taskId;
    const leaseMs = this.options.leaseSeconds * 1000;
    const claimedAt = nowIso();
    if (!(await tasks.claim(id, workerId, claimedAt, isoAfter(claimedAt, leaseMs)))) return;

    const controller = new AbortController();
    this.active.set(id, controller);
    this.deps.metrics.queriesRunning.inc();
    let task: QueryTaskRow | undefined;
    let timer: NodeJS.Timeout | undefined;
    const heartbeat = setInterval(() => void this.renew(id, controller), Math.max(500, leaseMs / 3));
    heartbeat.unref();
    try {
      task = await tasks.find(id);
      if (!task) return;
      const seconds = task.timeout_seconds;
      timer = setTimeout(
        () => controller.abort({ kind: 'timeout', seconds } satisfies AbortReason),
        seconds * 1000,
      );
      timer.unref();
      // A cancel that arrived between claim and now.
      if (task.cancel_requested) controller.abort({ kind: 'canceled' } satisfies AbortReason);
      await this.execute(task, controller.signal);
    } catch (err) {
      await this.fail(id, task, controller.signal, err);
    } finally {
      clearTimeout(timer);
      clearInterval(heartbeat);
      this.active.delete(id);
      this.stored.delete(id);
      this.deps.progress.delete(id);
      this.deps.metrics.queriesRunning.dec();
      // The task's end is recorded (or another process recorded it): its callback, if any, goes out now.
      await this.deps.taskEnded?.(id);
      await this.deps.events
        .publishFinished(id)
        .catch((err: unknown) => log.warn({ err, taskId: id }, 'wake-up lost'));
    }
  };

  /** Stops a task running in this process, if it is here. */
  abort(taskId: string, reason: AbortReason): boolean {
    const controller = this.active.get(taskId);
    if (!controller) return false;
    controller.abort(reason);
    return true;
  }

  /** Stops every running query (shutdown); each ends `failed` with a message saying why. */
  abortAll(reason: AbortReason): void {
    for (const controller of this.active.values()) controller.abort(reason);
  }

  close(): void {
    this.stopListening();
  }

  private async execute(task: QueryTaskRow, signal: AbortSignal): Promise<void> {
    const { results, tasks } = this.deps;
    const connection = await this.resolveConnection(task);
    const parameters = JSON.parse(task.parameters) as (string | number | boolean | null)[];
    const pageRows = task.page_rows ?? this.options.pageRows;
    const batchSize = Math.min(pageRows, MAX_BATCH_ROWS);
    const stream = await connection.connector.stream(
      connection.config,
      task.sql,
      parameters,
      { signal, batchSize, warm: this.deps.resolver.warmSlot(connection) },
      this.deps.resolver.contextFor(task.organization_id),
    );

    const fields = uniqueFieldNames(stream.columns.map((c) => c.name));
    const schema = stream.columns.map((c, i) => ({ name: fields[i]!, type: c.type }));
    const encode = createRowEncoder(fields);
    const progress: TaskProgress = { rows: 0, pages: 0, bytes: 0 };
    this.stored.set(task.id, progress);
    const writer = new PageWriter({
      maxRows: pageRows,
      maxBytes: this.options.pageBytes,
      writesInFlight: PAGE_WRITES_IN_FLIGHT,
      maxResultBytes: this.options.maxResultBytes,
      sink: async (page, bytes, rows) => {
        // The reserve (QRUN_MIN_FREE_BYTES) is checked before every page, so the query stops at it.
        await results.assertRoom(bytes.length);
        await results.putPage(task.id, page, bytes);
        this.deps.metrics.pagesWritten.inc();
        this.deps.metrics.rowsWritten.inc(rows);
        progress.rows += rows;
        progress.pages++;
        progress.bytes += bytes.length;
        this.deps.progress.set(task.id, progress);
      },
    });

    const maxRows = task.max_rows ?? Number.POSITIVE_INFINITY;
    let count = 0;
    let truncated = false;
    let summary: PageWriterSummary;
    try {
      // Leaving the loop, by break or by a throw (a limit crossed), closes the cursor on the database
      // (the iterator's return()), so no more rows are read than the limits let through.
      rows: for await (const batch of stream.rows) {
        for (const row of batch) {
          if (count >= maxRows) {
            truncated = true;
            break rows;
          }
          const pushed = writer.push(encode(row));
          // Most rows only join the open page; awaiting that settled promise would cost a tick per row.
          if (pushed !== ROW_ADDED) await pushed;
          count++;
        }
      }
      // A driver that ends its stream quietly on abort must not turn a stopped query into a short result.
      if (signal.aborted) throw new QueryAbortedError(signal.reason);
      summary = await writer.finish();
    } catch (err) {
      // fail() deletes the pages: no write may still be running then, or its page would outlive the delete.
      await writer.settle();
      throw err;
    }

    const finishedAt = nowIso();
    const recorded = await tasks.finishDone(task.id, this.options.workerId, {
      fields,
      schema,
      rowCount: summary.rowCount,
      pageCount: summary.pageCount,
      truncated,
      finishedAt,
      expiresAt: isoAfter(finishedAt, this.options.resultTtlSeconds * 1000),
    });
    // Lost the lease meanwhile: the sweeper has already declared the task lost, so these pages are orphans.
    if (!recorded) await deletePages(this.deps, task.id);
    else this.deps.metrics.queriesFinished.inc({ status: 'done' });
  }

  private async resolveConnection(task: QueryTaskRow): Promise<ResolvedConnection> {
    const row = await this.deps.connectionRows.findById(task.connection_id);
    if (!row || row.organization_id !== task.organization_id) {
      throw new DatabaseError(
        'The connection this query was submitted on no longer exists.',
        'connection_not_found',
      );
    }
    return this.deps.resolver.resolve(row);
  }

  /** Records the failure, after removing any pages written so far: a failed query has no partial result. */
  private async fail(
    id: string,
    task: QueryTaskRow | undefined,
    signal: AbortSignal,
    err: unknown,
  ): Promise<void> {
    const { tasks, log } = this.deps;
    // A delete that fails is queued for the sweeper, so the failure is still recorded below.
    await deletePages(this.deps, id);
    const reason = signal.aborted ? abortReason(signal.reason) : undefined;
    if (reason?.kind === 'lease_lost') return;
    const limit = limitMessage(err, this.options);
    let message: string;
    let details: ErrorDetails;
    if (reason) {
      message = abortMessage(reason);
      details = abortDetails(reason);
    } else if (limit !== undefined) {
      ({ message, details } = limit);
    } else if (err instanceof DatabaseError) {
      const secrets = task ? await this.secretsOf(task) : [];
      message = scrubMessage(err.message, secrets);
      details = {
        code: err.code ?? 'database_error',
        sqlstate: err.sqlstate ?? null,
        retryable: err.retryable,
        position: err.position ?? null,
      };
    } else {
      log.error({ err, taskId: id }, 'query failed inside qrun');
      message =
        'qrun could not run this query because of an internal error; the details are in the server log.';
      details = qrunErrorDetails('internal_error');
    }
    const finishedAt = nowIso();
    this.deps.metrics.queriesFinished.inc({ status: 'failed' });
    await tasks.finishFailed(
      id,
      this.options.workerId,
      // A database may quote a NUL from the query in its message; PostgreSQL text cannot store it.
      message.replaceAll('\u0000', '\uFFFD'),
      details,
      finishedAt,
      isoAfter(finishedAt, this.options.resultTtlSeconds * 1000),
    );
  }

  private async secretsOf(task: QueryTaskRow): Promise<string[]> {
    try {
      return (await this.resolveConnection(task)).secrets;
    } catch {
      return [];
    }
  }

  private async renew(id: string, controller: AbortController): Promise<void> {
    try {
      const until = isoAfter(nowIso(), this.options.leaseSeconds * 1000);
      const { held, cancelRequested } = await this.deps.tasks.renewLease(id, this.options.workerId, until);
      if (!held) controller.abort({ kind: 'lease_lost' } satisfies AbortReason);
      else if (cancelRequested) controller.abort({ kind: 'canceled' } satisfies AbortReason);
      // Keeps the progress entry alive between pages that are slow to fill.
      const progress = this.stored.get(id);
      if (held && progress && progress.pages > 0) this.deps.progress.set(id, progress);
    } catch (err) {
      // A missed heartbeat is survivable; the lease outlasts several of them.
      this.deps.log.warn({ err, taskId: id }, 'lease renewal failed');
    }
  }
}

/** What the caller reads when a query stopped at one of the server's size limits. */
function limitMessage(
  err: unknown,
  limits: { pageBytes: number; maxResultBytes: number },
): { message: string; details: ErrorDetails } | undefined {
  if (err instanceof RowTooLargeError) {
    return {
      message:
        `Row ${err.rowNumber} is ${err.rowBytes} bytes of JSON, more than a result page may hold ` +
        `(QRUN_PAGE_BYTES = ${formatBytes(limits.pageBytes)}).`,
      details: qrunErrorDetails('row_too_large'),
    };
  }
  if (err instanceof ResultTooLargeError) {
    return {
      message:
        `The result is larger than this server keeps (QRUN_MAX_RESULT_BYTES = ${formatBytes(limits.maxResultBytes)}); ` +
        'add a LIMIT or filter, or use max_rows.',
      details: qrunErrorDetails('result_too_large'),
    };
  }
  if (isStorageFull(err)) {
    return {
      message:
        'The server ran out of storage for query results while this query ran, so the query was stopped and ' +
        'its partial result discarded; try again later.',
      details: qrunErrorDetails('storage_full'),
    };
  }
  return undefined;
}
