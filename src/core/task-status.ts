/**
 * The task vocabulary shared by everything that reads or changes a query task (the API's services, the
 * worker, the sweeper, the store): its states and the terminal messages a client sees. It sits below all
 * of them, so none has to import another for a word.
 */

export type TaskStatus = 'created' | 'running' | 'done' | 'failed' | 'unknown';

/** Frozen so nobody invents a sixth state. `done`, `failed` and `unknown` are terminal. */
export const TASK_STATUS = Object.freeze({
  created: 'created',
  running: 'running',
  done: 'done',
  failed: 'failed',
  unknown: 'unknown',
} as const satisfies Record<TaskStatus, TaskStatus>);

export const TERMINAL_STATUSES: readonly TaskStatus[] = Object.freeze(['done', 'failed', 'unknown']);

export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/** The error of a task whose worker died (the sweeper found its lease expired, or a restart). */
export const LOST_MESSAGE =
  'lost: the worker running this query stopped before it finished (crash or restart); its result was lost. Submit it again.';

/** What a query reads once its result has been kept for its retention period and deleted. */
export const EXPIRED_MESSAGE = 'expired: the result was kept for its retention period and has been deleted.';
