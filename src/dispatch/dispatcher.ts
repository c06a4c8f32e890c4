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
}

export type TaskHandler = (task: DispatchedTask) => Promise<void>;
