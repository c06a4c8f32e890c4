import { unavailable } from '../core/errors.js';
import type { DispatchedTask, Dispatcher, TaskHandler } from './dispatcher.js';

export interface InProcessDispatcherOptions {
  /** Tasks running at once in this process. */
  workerConcurrency: number;
  /** Tasks running at once on one connection. */
  connectionConcurrency: number;
  /** Waiting tasks beyond which enqueue answers 503. */
  maxQueued: number;
}

/**
 * A FIFO queue in memory with a global and a per-connection limit. A task whose connection is at its
 * limit waits without blocking tasks behind it on other connections.
 */
export class InProcessDispatcher implements Dispatcher {
  private readonly waiting: DispatchedTask[] = [];
  private readonly queued = new Set<string>();
  private readonly activeByConnection = new Map<string, number>();
  private readonly running = new Set<Promise<void>>();
  private active = 0;
  private handler: TaskHandler | undefined;
  private closed = false;

  constructor(private readonly options: InProcessDispatcherOptions) {}

  async enqueue(task: DispatchedTask): Promise<void> {
    if (this.closed) throw unavailable('qrun is shutting down; try again shortly.', 5);
    if (this.queued.has(task.taskId)) return;
    if (this.waiting.length >= this.options.maxQueued) {
      throw unavailable(`The query queue is full (${this.options.maxQueued} waiting); try again shortly.`, 5);
    }
    this.waiting.push(task);
    this.queued.add(task.taskId);
    this.pump();
  }

  start(handler: TaskHandler): void {
    this.handler = handler;
    this.pump();
  }

  get backlog(): number {
    return this.waiting.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.waiting.length = 0;
    this.queued.clear();
    await Promise.allSettled([...this.running]);
  }

  private pump(): void {
    const handler = this.handler;
    if (!handler || this.closed) return;
    for (let i = 0; i < this.waiting.length && this.active < this.options.workerConcurrency;) {
      const task = this.waiting[i]!;
      const busy = this.activeByConnection.get(task.connectionId) ?? 0;
      if (busy >= this.options.connectionConcurrency) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.queued.delete(task.taskId);
      this.active++;
      this.activeByConnection.set(task.connectionId, busy + 1);
      const run = handler(task)
        .catch(() => undefined) // the handler records its own failures; one task never stops the queue
        .finally(() => {
          this.active--;
          const n = (this.activeByConnection.get(task.connectionId) ?? 1) - 1;
          if (n === 0) this.activeByConnection.delete(task.connectionId);
          else this.activeByConnection.set(task.connectionId, n);
          this.running.delete(run);
          this.pump();
        });
      this.running.add(run);
    }
  }
}
