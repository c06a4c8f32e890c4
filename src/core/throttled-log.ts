import type { Logger } from 'pino';

/** How often one source of recurring errors may log: an outage is one story, not a line per attempt. */
export const ERROR_LOG_INTERVAL_MS = 30_000;

/**
 * A warning logger for errors that repeat while something is down (a Redis reconnecting every 200 ms):
 * each `source` logs at most once per interval. Without a logger it does nothing.
 */
export function throttledWarn(
  log: Pick<Logger, 'warn'> | undefined,
  message: string,
  intervalMs = ERROR_LOG_INTERVAL_MS,
): (err: unknown, source?: string) => void {
  const last = new Map<string, number>();
  return (err, source = '') => {
    if (!log) return;
    const now = Date.now();
    if (now - (last.get(source) ?? -Infinity) < intervalMs) return;
    last.set(source, now);
    log.warn(source === '' ? { err } : { err, source }, message);
  };
}
