import { isTerminal, type ErrorDetails } from '../core/task-status.js';
import { toWireTime } from '../core/time.js';
import type { TaskEvents } from '../events/task-events.js';
import type { QueryTaskView } from '../store/repositories/query-tasks.js';
import type { Progress } from '../wire/queries.js';
import type { QueryEvent } from '../wire/query-events.js';

/** What following one query needs from QueryService. */
export interface FollowDeps {
  /** The task as it is now in the store (the truth; wake-ups are only hints). */
  reread(id: string): Promise<QueryTaskView | undefined>;
  /** Wake-ups when a task ends: in-process, or over Redis pub/sub from any process. */
  events: Pick<TaskEvents, 'onFinished'>;
  /** The running query's progress, as a status read shows it; undefined when there is none (yet). */
  progressOf(task: QueryTaskView): Promise<Progress | undefined>;
  /** The terminal event of an ended task. */
  final(task: QueryTaskView): QueryEvent;
  /**
   * Takes one of the caller's follow slots (the long-poll cap, QRUN_MAX_WAITS_PER_KEY); false when none is
   * free. Called only once the stream would have to wait, and given back by `release` when it ends.
   */
  hold(): boolean;
  release(): void;
}

/** The store is re-read at least this often while nothing wakes the stream up. */
const REREAD_MS = 1000;

/**
 * The events of one query, until it ends: `status` at once (the current status), then while it runs a
 * `status` event for each change and a `progress` event whenever its progress changed, and finally `done`
 * or `failed`. The stream wakes up when the task's end is announced (TaskEvents: in this process, or from
 * the worker's process over Redis) and re-reads the store after every wake-up and at least once a second,
 * so a lost wake-up costs at most a second. A caller over the cap gets the one status event. Ends when
 * `signal` aborts (the client went away), with nothing left behind: no listener, no timer, no slot.
 */
export async function* followQuery(
  first: QueryTaskView,
  deps: FollowDeps,
  signal: AbortSignal,
): AsyncGenerator<QueryEvent, void, undefined> {
  yield { event: 'status', data: { id: first.id, status: first.status } };
  if (isTerminal(first.status)) {
    yield deps.final(first);
    return;
  }
  if (signal.aborted || !deps.hold()) return;

  let signaled = false;
  let wake: (() => void) | undefined;
  const unsubscribe = deps.events.onFinished(first.id, () => {
    signaled = true;
    wake?.();
  });
  const onAbort = () => wake?.();
  signal.addEventListener('abort', onAbort);
  try {
    let status = first.status;
    let progress: string | undefined;
    for (;;) {
      signaled = false;
      const task = await deps.reread(first.id);
      if (signal.aborted) return;
      // Deleted under the stream (its organization went away): nothing more will come.
      if (!task) return;
      if (task.status !== status) {
        status = task.status;
        yield { event: 'status', data: { id: task.id, status: task.status } };
      }
      if (isTerminal(task.status)) {
        yield deps.final(task);
        return;
      }
      if (task.status === 'running') {
        const now = await deps.progressOf(task);
        // A change in what was stored, not the clock: `elapsed_ms` alone does not make an event.
        const text = now === undefined ? undefined : JSON.stringify({ ...now, elapsed_ms: undefined });
        if (now !== undefined && text !== progress) {
          progress = text;
          yield { event: 'progress', data: { id: task.id, progress: { ...now } } };
        }
      }
      if (signal.aborted) return;
      if (signaled) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, REREAD_MS);
        function done(): void {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
      if (signal.aborted) return;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    unsubscribe();
    // A pending wait's timer, if the consumer stopped at a yield: nothing may outlive the stream.
    wake?.();
    deps.release();
  }
}

/** The terminal event of an ended task (done: count and expiry; failed: the error and its details). */
export function finalEvent(task: QueryTaskView): QueryEvent {
  if (task.status === 'done') {
    return {
      event: 'done',
      data: {
        id: task.id,
        status: 'done',
        count: task.row_count ?? 0,
        truncated: task.truncated === 1,
        expires: toWireTime(task.expires_at ?? task.finished_at ?? task.created_at),
      },
    };
  }
  return {
    event: 'failed',
    data: {
      id: task.id,
      status: 'failed',
      error: task.error ?? 'failed',
      // Null only for failures recorded before error_details existed.
      error_details: task.error_details === null ? null : (JSON.parse(task.error_details) as ErrorDetails),
    },
  };
}
