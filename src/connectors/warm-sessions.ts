/**
 * Idle database sessions kept for the next statement on the same stored connection, so a small query does
 * not pay a TCP connect, a login and the session settings every time (issue 15, item 3).
 *
 * The rules, and why:
 * - A session is only ever given back to the stored connection (and so the organization) it was opened
 *   for: the caller's `owner` names both, and the engine adds a fingerprint of the configuration and the
 *   checked addresses, so an edited password or a host that now resolves elsewhere never reuses a session
 *   opened under the old ones.
 * - Only a statement that ran to its end gives its session back, and the engine resets it first (e.g.
 *   PostgreSQL's `DISCARD ALL` and the session settings again): a cancelled, failed or abandoned statement
 *   ends its session, as before.
 * - At most `limit` idle sessions per owner (the per-connection concurrency limit): statements take an idle
 *   session before opening one, so a process never holds more sessions for one connection than it ran
 *   statements on it at once.
 * - An idle session is ended after `idleMs`, when its server drops it, and when the pool closes
 *   (shutdown). Its timer never keeps the process alive.
 *
 * Engine-agnostic: a session is any object with an `end()`; engines check what they take (`instanceof`).
 */

/** What the pool needs of a session: a way to end it, and to hear that it ended on its own. */
export interface WarmSession {
  /** Ends the connection; never throws. */
  end(): Promise<void>;
  /** Registers `listener` for the connection's end (the server or the network dropped it); returns the undo. */
  onLost(listener: () => void): () => void;
}

/** Where a statement may take and give back a warm session: the pool, and the stored connection it runs on. */
export interface WarmSessionSlot {
  pool: WarmSessions;
  /** The organization and stored connection, e.g. `<organization id>/<connection id>`. */
  owner: string;
}

export interface WarmSessionsOptions {
  /** Idle sessions kept per owner (QRUN_CONNECTION_CONCURRENCY). */
  limit: number;
  /** An idle session is ended after this long (QRUN_SESSION_IDLE_SECONDS). 0: none are kept. */
  idleMs: number;
}

interface Idle {
  key: string;
  session: WarmSession;
  timer: NodeJS.Timeout;
  unlisten: () => void;
}

export class WarmSessions {
  /** Per owner, the idle sessions, most recently given back last. */
  private readonly idle = new Map<string, Idle[]>();
  private closed = false;

  constructor(private readonly options: WarmSessionsOptions) {}

  get enabled(): boolean {
    return !this.closed && this.options.idleMs > 0 && this.options.limit > 0;
  }

  /** Idle sessions held now (all owners). */
  get size(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  /**
   * The most recently used idle session of `owner` opened under `key`, taken out of the pool, or undefined.
   * Most recent first, so that when traffic drops the sessions not needed any more are the ones that idle out.
   */
  take(owner: string, key: string): WarmSession | undefined {
    const list = this.idle.get(owner);
    if (!list) return undefined;
    for (let i = list.length - 1; i >= 0; i--) {
      const entry = list[i]!;
      if (entry.key !== key) continue;
      this.remove(owner, entry);
      return entry.session;
    }
    return undefined;
  }

  /**
   * Keeps `session` (already reset by its engine) for `owner`'s next statement under `key`; ends it instead
   * when the pool is closed or disabled. Beyond `limit` idle sessions the oldest of the owner's is ended.
   */
  give(owner: string, key: string, session: WarmSession): void {
    if (!this.enabled) {
      void session.end();
      return;
    }
    const list = this.idle.get(owner) ?? [];
    this.idle.set(owner, list);
    const entry: Idle = {
      key,
      session,
      timer: setTimeout(() => this.drop(owner, entry), this.options.idleMs),
      unlisten: session.onLost(() => this.drop(owner, entry)),
    };
    entry.timer.unref();
    list.push(entry);
    while (list.length > this.options.limit) this.drop(owner, list[0]!);
  }

  /** Ends every idle session of `owner` (its connection was deleted or changed). */
  forget(owner: string): void {
    for (const entry of [...(this.idle.get(owner) ?? [])]) this.drop(owner, entry);
  }

  /** Ends every idle session and keeps none from now on (shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    const sessions: WarmSession[] = [];
    for (const [owner, list] of this.idle) {
      for (const entry of [...list]) {
        this.remove(owner, entry);
        sessions.push(entry.session);
      }
    }
    await Promise.all(sessions.map((s) => s.end()));
  }

  private drop(owner: string, entry: Idle): void {
    if (this.remove(owner, entry)) void entry.session.end();
  }

  private remove(owner: string, entry: Idle): boolean {
    const list = this.idle.get(owner);
    const at = list?.indexOf(entry) ?? -1;
    if (!list || at < 0) return false;
    list.splice(at, 1);
    if (list.length === 0) this.idle.delete(owner);
    clearTimeout(entry.timer);
    entry.unlisten();
    return true;
  }
}
