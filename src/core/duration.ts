/**
 * Durations as Polytomic's API writes them: Go's `time.Duration` text (`3h30m`, `90s`, `1.5h`), the form
 * of its `healthcheck_interval`. qrun reads Go's units and answers in whole seconds, shortest form first
 * (`3h30m`, `1m30s`, `45s`).
 */

const UNIT_SECONDS: Readonly<Record<string, number>> = {
  ns: 1e-9,
  us: 1e-6,
  µs: 1e-6,
  μs: 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
};

const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * The number of seconds a Go duration text stands for (`2h45m` → 9900), or undefined when the text is
 * not one (no unit, a sign, days, spaces). Fractions are allowed (`1.5h`); the result may be fractional.
 */
export function parseGoDuration(text: string): number | undefined {
  if (text === '' || text.length > 64) return undefined;
  let seconds = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const start = PART.lastIndex;
    const match = PART.exec(text);
    if (!match || match.index !== start) return undefined;
    seconds += Number(match[1]) * UNIT_SECONDS[match[2]!]!;
  }
  return seconds;
}

/** Whole seconds as the shortest Go duration text: 12600 → `3h30m`, 90 → `1m30s`, 0 → `0s`. */
export function formatGoDuration(seconds: number): string {
  const whole = Math.max(0, Math.round(seconds));
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = whole % 60;
  const text = `${h > 0 ? `${h}h` : ''}${m > 0 ? `${m}m` : ''}${s > 0 ? `${s}s` : ''}`;
  return text === '' ? '0s' : text;
}
