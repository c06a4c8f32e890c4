import { describe, expect, it } from 'vitest';
import { formatGoDuration, parseGoDuration } from '../../src/core/duration.js';

describe("Go durations (Polytomic's healthcheck_interval)", () => {
  it('reads Go’s units, fractions and sequences', () => {
    expect(parseGoDuration('3h30m')).toBe(12_600);
    expect(parseGoDuration('90m')).toBe(5400);
    expect(parseGoDuration('1.5h')).toBe(5400);
    expect(parseGoDuration('1h0m0s')).toBe(3600);
    expect(parseGoDuration('45s')).toBe(45);
    expect(parseGoDuration('1500ms')).toBe(1.5);
    expect(parseGoDuration('.5m')).toBe(30);
  });

  it('refuses what Go would not read as a duration', () => {
    for (const text of [
      '',
      '5',
      'h',
      '1d',
      '-1h',
      '+1h',
      '1h 30m',
      ' 1h',
      '1H',
      '1.h2',
      'soon',
      '1h30',
      'x'.repeat(65),
    ]) {
      expect(parseGoDuration(text), text).toBeUndefined();
    }
  });

  it('writes whole seconds in the shortest form', () => {
    expect(formatGoDuration(12_600)).toBe('3h30m');
    expect(formatGoDuration(3600)).toBe('1h');
    expect(formatGoDuration(90)).toBe('1m30s');
    expect(formatGoDuration(720 * 3600)).toBe('720h');
    expect(formatGoDuration(3661)).toBe('1h1m1s');
    expect(formatGoDuration(0)).toBe('0s');
  });
});
