import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { workerEntry } from '../../core/worker-entry.js';

/**
 * The SQLite worker processes (sqlite-worker.ts), started ahead of need. Starting one (fork, Node's
 * start-up, loading better-sqlite3, the watchdog thread) takes 60–100 ms, which was most of a small SQLite
 * query's time. A few spares wait, already started, and each statement takes one; a replacement starts in
 * the background at once.
 *
 * A spare has never run a statement, so any statement may take it. After a statement that ran to its
 * end, its process may wait for the next statement of the same stored connection (sqlite-session.ts,
 * through the warm-session pool), never another's; every other end kills it. Spares start with the first
 * SQLite statement (a server that never runs SQLite starts none) and exit after SPARE_IDLE_MS without a
 * statement, so an idle server holds no extra memory for long.
 */

const entry = workerEntry(import.meta.url, 'sqlite-worker');

/** Spares kept while SQLite statements come: enough for a burst of small queries, few enough to be cheap. */
const SPARES = 2;
/** Spares exit after this long without a statement. */
const SPARE_IDLE_MS = 30_000;

/** The worker gets only what Node itself may need from the environment, never the server's secrets. */
const WORKER_ENV_KEYS = ['PATH', 'HOME', 'TMPDIR', 'TMP', 'TEMP', 'TZ', 'LANG', 'LC_ALL', 'SYSTEMROOT'];

function workerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of WORKER_ENV_KEYS) if (process.env[key] !== undefined) env[key] = process.env[key];
  return env;
}

function startWorker(): ChildProcess {
  return fork(fileURLToPath(entry.url), [], {
    execArgv: entry.execArgv,
    serialization: 'advanced', // structured clone: bigint and Uint8Array survive the trip
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: workerEnv(),
  });
}

export function usable(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null && child.connected;
}

/** A waiting process keeps neither the parent's event loop nor its exit waiting. */
export function detach(child: ChildProcess): void {
  child.unref();
  child.channel?.unref();
}

export function attach(child: ChildProcess): void {
  child.ref();
  child.channel?.ref();
}

export class SpareProcesses {
  private readonly spares = new Set<ChildProcess>();
  /** Spares that have said they are ready (sqlite-worker.ts sends `ready` once started). */
  private readonly started = new WeakSet<ChildProcess>();
  private idleTimer: NodeJS.Timeout | undefined;
  private refilling = false;

  constructor(
    private readonly count = SPARES,
    private readonly idleMs = SPARE_IDLE_MS,
    private readonly start: () => ChildProcess = startWorker,
  ) {}

  /** A started worker process that has never run a statement: a spare if one is ready, else a new one. */
  take(): ChildProcess {
    let child: ChildProcess | undefined;
    for (const spare of this.spares) {
      this.spares.delete(spare);
      spare.removeAllListeners('exit');
      spare.removeAllListeners('error');
      spare.removeAllListeners('message');
      if (usable(spare)) {
        child = spare;
        break;
      }
    }
    if (child) attach(child);
    else child = this.start();
    this.scheduleRefill();
    this.restartIdleTimer();
    return child;
  }

  /** How many spares wait now (for tests and metrics). */
  get waiting(): number {
    return this.spares.size;
  }

  /**
   * Whether the spares are all there and done starting (for tests that measure a statement's CPU time: a
   * spare's start-up must not count as the statement's work).
   */
  get settled(): boolean {
    return this.spares.size === this.count && [...this.spares].every((c) => this.started.has(c));
  }

  /** The process ids of the waiting spares (for tests). */
  get waitingPids(): number[] {
    return [...this.spares].map((c) => c.pid ?? -1);
  }

  /** Lets every spare go; later statements start new ones again. */
  drain(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    for (const spare of this.spares) {
      spare.removeAllListeners('exit');
      if (spare.exitCode === null && spare.signalCode === null) spare.kill('SIGKILL');
    }
    this.spares.clear();
  }

  // Forking costs a few milliseconds of this thread: not on the path of the statement that asked.
  private scheduleRefill(): void {
    if (this.refilling) return;
    this.refilling = true;
    setImmediate(() => {
      this.refilling = false;
      while (this.spares.size < this.count) {
        const spare = this.start();
        detach(spare);
        // A spare that dies while it waits (killed from outside) is replaced at the next take.
        spare.once('exit', () => this.spares.delete(spare));
        spare.on('error', () => this.spares.delete(spare));
        spare.once('message', () => this.started.add(spare));
        this.spares.add(spare);
      }
    });
  }

  private restartIdleTimer(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.drain(), this.idleMs);
    this.idleTimer.unref();
  }
}

/** The process-wide spares of the SQLite connector. */
export const sqliteProcesses = new SpareProcesses();

// The watchdog in each worker would notice the parent's exit within half a second; this is sooner.
process.once('exit', () => sqliteProcesses.drain());
