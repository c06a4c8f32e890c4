import yoctoSpinner, { type Spinner } from 'yocto-spinner';
import { num } from './api-client.js';

/** What GET /api/queries/{id} says while a query waits or runs. */
export interface QueryState {
  status?: unknown;
  queue_position?: unknown;
  progress?: { rows?: unknown; pages?: unknown; bytes?: unknown; elapsed_ms?: unknown };
}

/**
 * Whether to show the live progress line: only when stderr is a terminal (and not a dumb one, and not
 * under CI, where a spinner would print a line per frame).
 */
export function progressWanted(stream: NodeJS.WriteStream = process.stderr): boolean {
  return Boolean(stream.isTTY) && process.env.TERM !== 'dumb' && !('CI' in process.env);
}

const grouped = new Intl.NumberFormat('en-US');

function seconds(ms: number): string {
  return ms < 60_000
    ? `${(ms / 1000).toFixed(1)}s`
    : `${Math.floor(ms / 60_000)}m${Math.floor((ms % 60_000) / 1000)}s`;
}

/** The line's text: "queued (2 ahead) 1.2s" or "running 3.4s · 120,000 rows · 120 pages". */
export function progressText(state: QueryState, elapsedMs: number): string {
  const status = String(state.status ?? 'created');
  if (status === 'created') {
    const position = num(state.queue_position);
    const ahead =
      position === undefined ? '' : position === 0 ? ' (next)' : ` (${grouped.format(position)} ahead)`;
    return `queued${ahead} ${seconds(elapsedMs)}`;
  }
  const parts = [`${status} ${seconds(elapsedMs)}`];
  const rows = num(state.progress?.rows);
  const pages = num(state.progress?.pages);
  if (rows !== undefined) parts.push(`${grouped.format(rows)} ${rows === 1 ? 'row' : 'rows'}`);
  if (pages !== undefined) parts.push(`${grouped.format(pages)} ${pages === 1 ? 'page' : 'pages'}`);
  return parts.join(' · ');
}

/** The live progress line on stderr: a spinner, the status, the elapsed time and what is stored so far. */
export class ProgressLine {
  private spinner: Spinner | undefined;
  private state: QueryState = { status: 'created' };
  private timer: NodeJS.Timeout | undefined;
  private readonly started = Date.now();

  constructor(enabled: boolean) {
    if (!enabled) return;
    this.spinner = yoctoSpinner({ stream: process.stderr, handleSignals: false, text: this.text() }).start();
    // The elapsed time moves on between two answers of the server.
    this.timer = setInterval(() => this.render(), 250);
    this.timer.unref();
  }

  private text(): string {
    return progressText(this.state, Date.now() - this.started);
  }

  private render(): void {
    if (this.spinner) this.spinner.text = this.text();
  }

  update(state: QueryState): void {
    this.state = state;
    this.render();
  }

  /** Clears the line (before anything else is written). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.spinner?.stop();
    this.spinner = undefined;
  }
}
