import { unavailable } from '../core/errors.js';
import type { DispatchedTask, Dispatcher, TaskHandler } from './dispatcher.js';

export interface InProcessDispatcherOptions {
  /** Tasks running at once in this process. */
  workerConcurrency: number;
  /** Tasks running at once on one connection. */
  connectionConcurrency: number;
  /** Tasks of one organization running at once (Infinity: no limit). */
  organizationConcurrency: number;
  /** Waiting tasks beyond which enqueue answers 503. */
  maxQueued: number;
}

interface Waiting {
  /** The organization's tasks in the order they came. */
  tasks: DispatchedTask[];
  /** When its oldest waiting task came (a sequence number), to break ties between never-served ones. */
  since: number;
}

/**
 * Queues in memory, one per organization, with a global, a per-organization and a per-connection limit.
 * A free worker slot goes to the organization served least recently among those with a task that may
 * run now (below both of its limits): round robin, so one organization's backlog never starves another.
 * Within an organization tasks run in the order they came, except that a task whose connection is at
 * its limit waits without blocking the organization's tasks on other connections.
 */
export class InProcessDispatcher implements Dispatcher {
  private readonly waiting = new Map<string, Waiting>();
  private readonly queued = new Set<string>();
  private readonly activeByConnection = new Map<string, number>();
  private readonly activeByOrganization = new Map<string, number>();
  private readonly running = new Set<Promise<void>>();
  /** When each organization last got a worker slot (a sequence number). One number per organization. */
  private readonly lastServed = new Map<string, number>();
  private active = 0;
  private sequence = 0;
  private handler: TaskHandler | undefined;
  private closed = false;

  constructor(private readonly options: InProcessDispatcherOptions) {}

  async enqueue(task: DispatchedTask): Promise<void> {
    if (this.closed) throw unavailable('qrun is shutting down; try again shortly.', 5);
    if (this.queued.has(task.taskId)) return;
    if (this.queued.size >= this.options.maxQueued) {
      throw unavailable(`The query queue is full (${this.options.maxQueued} waiting); try again shortly.`, 5);
    }
    let org = this.waiting.get(task.organizationId);
    if (!org) {
      org = { tasks: [], since: ++this.sequence };
      this.waiting.set(task.organizationId, org);
    }
    org.tasks.push(task);
    this.queued.add(task.taskId);
    this.pump();
  }

  start(handler: TaskHandler): void {
    this.handler = handler;
    this.pump();
  }

  get backlog(): number {
    return this.queued.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.waiting.clear();
    this.queued.clear();
    await Promise.allSettled([...this.running]);
  }

  private pump(): void {
    const handler = this.handler;
    if (!handler || this.closed) return;
    while (this.active < this.options.workerConcurrency) {
      const next = this.pick();
      if (!next) return;
      this.launch(handler, next);
    }
  }

  /** Takes the next task to run, by the rules above; undefined when none may run now. */
  private pick(): DispatchedTask | undefined {
    let best: { org: Waiting; orgId: string; index: number; served: number } | undefined;
    for (const [orgId, org] of this.waiting) {
      if ((this.activeByOrganization.get(orgId) ?? 0) >= this.options.organizationConcurrency) continue;
      // Round robin: the organization served longest ago (never: -1) goes first; then the one waiting longest.
      const served = this.lastServed.get(orgId) ?? -1;
      if (best && (served > best.served || (served === best.served && org.since > best.org.since))) continue;
      const index = org.tasks.findIndex(
        (t) => (this.activeByConnection.get(t.connectionId) ?? 0) < this.options.connectionConcurrency,
      );
      if (index >= 0) best = { org, orgId, index, served };
    }
    if (!best) return undefined;
    const { org, orgId, index } = best;
    const [task] = org.tasks.splice(index, 1);
    this.lastServed.set(orgId, ++this.sequence);
    if (org.tasks.length === 0) this.waiting.delete(orgId);
    this.queued.delete(task!.taskId);
    return task;
  }

  private launch(handler: TaskHandler, task: DispatchedTask): void {
    this.active++;
    increment(this.activeByConnection, task.connectionId, 1);
    increment(this.activeByOrganization, task.organizationId, 1);
    const run = handler(task)
      .catch(() => undefined) // the handler records its own failures; one task never stops the queue
      .finally(() => {
        this.active--;
        increment(this.activeByConnection, task.connectionId, -1);
        increment(this.activeByOrganization, task.organizationId, -1);
        this.running.delete(run);
        this.pump();
      });
    this.running.add(run);
  }
}

function increment(counts: Map<string, number>, key: string, by: number): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n <= 0) counts.delete(key);
  else counts.set(key, n);
}
