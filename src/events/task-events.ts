import { EventEmitter } from 'node:events';

/**
 * Wake-ups about tasks: "this task reached a terminal status" (for long-polls) and "cancel this task"
 * (for the worker running it). A wake-up is only ever a latency hint: the metadata store stays the truth,
 * and every waiter re-reads it, so a lost message costs time, never correctness.
 *
 * Also "keys or users changed", so every process drops the principals it remembers at once instead of
 * after the cache's few seconds (a revoked key then stops working everywhere about as soon as here).
 */
export interface TaskEvents {
  publishFinished(taskId: string): Promise<void>;
  publishCancel(taskId: string): Promise<void>;
  publishIdentityChanged(): Promise<void>;
  /** Returns an unsubscribe function. */
  onFinished(taskId: string, listener: () => void): () => void;
  onCancel(listener: (taskId: string) => void): () => void;
  onIdentityChanged(listener: () => void): () => void;
  close(): Promise<void>;
}

/** In-process wake-ups, for the embedded default (api and worker in one process). */
export class LocalTaskEvents implements TaskEvents {
  private readonly emitter = new EventEmitter();

  constructor() {
    // Many long-polls may wait on one task.
    this.emitter.setMaxListeners(0);
  }

  async publishFinished(taskId: string): Promise<void> {
    this.emitter.emit(`finished:${taskId}`);
  }

  async publishCancel(taskId: string): Promise<void> {
    this.emitter.emit('cancel', taskId);
  }

  onFinished(taskId: string, listener: () => void): () => void {
    this.emitter.on(`finished:${taskId}`, listener);
    return () => this.emitter.off(`finished:${taskId}`, listener);
  }

  onCancel(listener: (taskId: string) => void): () => void {
    this.emitter.on('cancel', listener);
    return () => this.emitter.off('cancel', listener);
  }

  async publishIdentityChanged(): Promise<void> {
    this.emitter.emit('identity');
  }

  onIdentityChanged(listener: () => void): () => void {
    this.emitter.on('identity', listener);
    return () => this.emitter.off('identity', listener);
  }

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }
}
