/**
 * Hands query tasks to workers. Two implementations: in-process (the embedded default) and a queue
 * library on Redis (scale-out). Enqueueing the same task twice is harmless: the claim in the metadata
 * store decides who runs it, so dispatch only ever needs to be at-least-once.
 */
export interface Dispatcher {
  /** Queues a task. Throws AppError 503 (with Retry-After) when the backlog is full or dispatch is down. */
  enqueue(task: DispatchedTask): Promise<void>;
  /** Starts delivering tasks to the handler, within the concurrency limits. */
  start(handler: TaskHandler): void;
  /** Stops taking new tasks; resolves once running handlers have returned. */
  close(): Promise<void>;
}

export interface DispatchedTask {
  taskId: string;
  /** Used for the per-connection concurrency limit. */
  connectionId: string;
  /** Used for the per-organization limit and for sharing worker slots fairly between organizations. */
  organizationId: string;
  /**
   * How many of its organization's tasks were waiting when this one came (1 for the first). Dispatch that
   * cannot keep a queue per organization orders by it, so the n-th waiting task of every organization
   * runs before the (n+1)-th of any.
   */
  position: number;
}

/** Runs one task (the task row in the metadata store has everything else). */
export type TaskHandler = (task: Omit<DispatchedTask, 'position'>) => Promise<void>;
