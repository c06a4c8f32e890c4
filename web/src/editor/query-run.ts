import { ApiError, explain, sleep, type Api } from '../api/client';
import type { ErrorDetails, Progress } from '../api/types';
import { ResultPages } from '../results/result-pages';

/** Long-poll length: short, so progress (when the server reports it) refreshes every couple of seconds. */
const WAIT_SECONDS = 2;

export type RunState =
  | { phase: 'submitting'; startedAt: number }
  | {
      phase: 'waiting';
      id: string;
      status: 'created' | 'running';
      startedAt: number | null;
      progress: Progress | null;
      queuePosition: number | null;
      canceling: boolean;
    }
  | { phase: 'done'; id: string; startedAt: number | null; finishedAt: number; result: ResultPages }
  | {
      phase: 'failed';
      id: string | null;
      startedAt: number | null;
      finishedAt: number;
      message: string;
      details: ErrorDetails | null;
      canceled: boolean;
      /** Where the submitted SQL starts in the editor (to place error_details.position). */
      offset: number;
    };

/**
 * One query from submit (or reopen) to its end: submit, long-poll `GET /api/queries/{id}?wait=…` until a
 * terminal status, then a ResultPages for the result. Statuses: created → running → done | failed;
 * `unknown` (older servers) reads as failed.
 */
export class QueryRun {
  state: RunState;
  private readonly controller = new AbortController();

  private constructor(
    private readonly api: Api,
    private readonly onChange: (state: RunState) => void,
    private readonly offset: number,
    startedAt: number | null,
  ) {
    this.state = { phase: 'submitting', startedAt: startedAt ?? performance.now() };
  }

  /** Submits `sql` on the connection and follows it. */
  static submit(
    api: Api,
    connectionId: string,
    sql: string,
    offset: number,
    onChange: (state: RunState) => void,
    onSubmitted?: (id: string) => void,
  ): QueryRun {
    const run = new QueryRun(api, onChange, offset, performance.now());
    void (async () => {
      let id: string;
      try {
        id = (await api.submit(connectionId, sql)).id;
      } catch (err) {
        run.fail(null, explain(err, 'run queries'), null, false);
        return;
      }
      run.set({
        phase: 'waiting',
        id,
        status: 'created',
        startedAt: run.state.startedAt,
        progress: null,
        queuePosition: null,
        canceling: false,
      });
      onSubmitted?.(id);
      await run.follow(id);
    })();
    return run;
  }

  /** Follows a query submitted earlier (reopened from the history). */
  static open(api: Api, id: string, onChange: (state: RunState) => void): QueryRun {
    const run = new QueryRun(api, onChange, 0, null);
    run.state = {
      phase: 'waiting',
      id,
      status: 'created',
      startedAt: null,
      progress: null,
      queuePosition: null,
      canceling: false,
    };
    void run.follow(id);
    return run;
  }

  get id(): string | null {
    return this.state.phase === 'submitting' ? null : this.state.id;
  }

  /** Asks the database to stop the query; it then ends failed with error "canceled". */
  async cancel(): Promise<void> {
    const s = this.state;
    if (s.phase !== 'waiting') return;
    this.set({ ...s, canceling: true });
    try {
      await this.api.cancel(s.id);
    } catch (err) {
      const now = this.state;
      if (now.phase === 'waiting') this.set({ ...now, canceling: false });
      throw err;
    }
  }

  /** Stops following (another query replaced this one); the query itself goes on. */
  dispose(): void {
    this.controller.abort();
    if (this.state.phase === 'done') this.state.result.dispose();
  }

  private async follow(id: string): Promise<void> {
    const startedAt = this.state.startedAt;
    const signal = this.controller.signal;
    try {
      for (;;) {
        const asked = performance.now();
        const res = await this.api.query(`/api/queries/${id}?wait=${WAIT_SECONDS}`, signal);
        const d = res.data;
        if (d.status === 'done') {
          // For bench/console-first-rows.ts: "done" is when the answer saying so arrived.
          performance.clearMarks('qrun:done');
          performance.mark('qrun:done', { startTime: res.receivedAt, detail: { id } });
          this.set({
            phase: 'done',
            id,
            startedAt,
            finishedAt: performance.now(),
            result: new ResultPages(this.api, res),
          });
          return;
        }
        if (d.status === 'failed') {
          const message = d.error ?? 'The query failed.';
          this.fail(id, message, d.error_details ?? null, d.error === 'canceled');
          return;
        }
        const prev = this.state;
        this.set({
          phase: 'waiting',
          id,
          status: d.status,
          startedAt,
          progress: d.progress ?? null,
          queuePosition: d.queue_position ?? null,
          canceling: prev.phase === 'waiting' ? prev.canceling : false,
        });
        // A server that answers at once (its long-polls per key are taken) is asked again a little later.
        if (performance.now() - asked < 300) await sleep(500, signal);
      }
    } catch (err) {
      if (signal.aborted) return;
      // 404 expired says when, and to run the query again.
      const message = err instanceof ApiError && err.key === 'expired' ? err.message : explain(err);
      this.fail(id, message, null, false);
    }
  }

  private fail(id: string | null, message: string, details: ErrorDetails | null, canceled: boolean): void {
    this.set({
      phase: 'failed',
      id,
      startedAt: this.state.startedAt,
      finishedAt: performance.now(),
      message,
      details,
      canceled,
      offset: this.offset,
    });
  }

  private set(state: RunState): void {
    if (this.controller.signal.aborted) return;
    this.state = state;
    this.onChange(state);
  }
}
