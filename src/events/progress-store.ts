/** What a running query has stored so far: rows and pages written to the result store, and their bytes. */
export interface TaskProgress {
  rows: number;
  pages: number;
  bytes: number;
}

/**
 * A running query's progress, written by the runner after every page it stores and read by the API for
 * `GET /api/queries/{id}` (`progress`). Kept out of the metadata store on purpose: an UPDATE per page would
 * slow ingest, and progress is a hint that may be lost (a Redis outage, a dead worker) without harm.
 * - `set` and `delete` never wait and never throw: the runner fires them and goes on.
 * - `get` answers undefined when nothing is known (no page yet, or the entry is gone).
 */
export interface ProgressStore {
  set(taskId: string, progress: TaskProgress): void;
  get(taskId: string): Promise<TaskProgress | undefined>;
  delete(taskId: string): void;
  close(): Promise<void>;
}

/**
 * In this process's memory: the embedded default, where the API and the runner share one process.
 * Across processes: RedisProgressStore (redis-progress-store.ts, a module of its own so that the
 * embedded default never loads ioredis).
 */
export class LocalProgressStore implements ProgressStore {
  private readonly entries = new Map<string, TaskProgress>();

  set(taskId: string, progress: TaskProgress): void {
    this.entries.set(taskId, { ...progress });
  }

  async get(taskId: string): Promise<TaskProgress | undefined> {
    const p = this.entries.get(taskId);
    return p === undefined ? undefined : { ...p };
  }

  delete(taskId: string): void {
    this.entries.delete(taskId);
  }

  async close(): Promise<void> {
    this.entries.clear();
  }
}
