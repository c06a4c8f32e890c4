import type { Clock } from '../../src/core/time.js';

/** A clock that reads the real time plus an offset the test moves forward, instead of waiting. */
export interface TestClock {
  clock: Clock;
  advance(ms: number): void;
}

export function testClock(): TestClock {
  let offset = 0;
  return {
    clock: () => new Date(Date.now() + offset).toISOString(),
    advance: (ms) => {
      offset += ms;
    },
  };
}
