import { defineConfig } from 'vitest/config';
import { SCALE_OUT_SUITES } from './test/scale-out-suites.js';

// The second pass of `npm test` (QRUN_TEST_DEPLOYMENT=scale-out) runs only the files that depend on the
// deployment; test/scale-out-suites.ts lists them and test/unit/scale-out-suites.test.ts keeps that list true.
const scaleOut = process.env.QRUN_TEST_DEPLOYMENT === 'scale-out';

export default defineConfig({
  test: {
    include: scaleOut ? [...SCALE_OUT_SUITES] : ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Test files share the machine's PostgreSQL and MariaDB; each file uses its own databases,
    // but two cores do not gain from more parallelism than this.
    maxWorkers: 2,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
