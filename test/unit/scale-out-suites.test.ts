/**
 * The second pass's list (test/scale-out-suites.ts) against the code: every file that reaches the
 * deployment switch runs in it, and nothing else does.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deploymentDependentSuites } from '../helpers/deployment-suites.js';
import { REPO_ROOT } from '../helpers/process.js';
import { FIRST_PASS_ONLY, SCALE_OUT_SUITES } from '../scale-out-suites.js';

describe('the second pass (npm run test:scale-out)', () => {
  const dependent = deploymentDependentSuites(REPO_ROOT);

  it('runs every file that uses the deployment switch, and only those', () => {
    const expected = dependent.filter((file) => !(file in FIRST_PASS_ONLY));
    expect(
      [...SCALE_OUT_SUITES].sort(),
      'test/scale-out-suites.ts is out of date: a file that uses the deployment helpers must be in ' +
        'SCALE_OUT_SUITES (or FIRST_PASS_ONLY, with a reason), and one that does not must not be',
    ).toEqual(expected);
  });

  it('names files that exist, once each', () => {
    expect(new Set(SCALE_OUT_SUITES).size).toBe(SCALE_OUT_SUITES.length);
    for (const file of SCALE_OUT_SUITES) expect(existsSync(path.join(REPO_ROOT, file)), file).toBe(true);
  });

  it('exempts only files that do use the switch, each with a reason', () => {
    for (const [file, reason] of Object.entries(FIRST_PASS_ONLY)) {
      expect(dependent, `${file} no longer uses the switch: drop it from FIRST_PASS_ONLY`).toContain(file);
      expect(reason.length, file).toBeGreaterThan(20);
    }
  });
});

describe('finding the files that use the deployment switch', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'qrun-suites-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const write = (file: string, text: string) => {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  };
  write(
    'test/helpers/deployment.ts',
    "export const onScaleOut = process.env.QRUN_TEST_DEPLOYMENT === 'scale-out';\nexport const TEST_REDIS_URL = 'redis://x';\n",
  );
  write(
    'test/helpers/server.ts',
    "import { onScaleOut } from './deployment.js';\n" +
      'export interface TestServer { url: string }\n' +
      'export async function startTestServer(): Promise<TestServer> { return { url: String(onScaleOut) }; }\n' +
      'export async function request(url: string) { return fetch(url); }\n',
  );
  write(
    'test/helpers/wrapper.ts',
    "import { startTestServer } from './server.js';\n" +
      'const start = () => startTestServer();\n' +
      'export async function tenantServer() { return start(); }\n' +
      'export const plain = 1;\n',
  );
  write(
    'test/a/through-wrapper.test.ts',
    "import { tenantServer } from '../helpers/wrapper.js';\nit('x', () => tenantServer());\n",
  );
  write(
    'test/a/plain-of-wrapper.test.ts',
    "import { plain } from '../helpers/wrapper.js';\nit('x', () => plain);\n",
  );
  write(
    'test/a/request-only.test.ts',
    "import { request } from '../helpers/server.js';\nimport { TEST_REDIS_URL } from '../helpers/deployment.js';\n" +
      "it('x', () => request(TEST_REDIS_URL));\n",
  );
  write(
    'test/a/type-only.test.ts',
    "import type { TestServer } from '../helpers/server.js';\nlet s: TestServer | undefined;\nit('x', () => s);\n",
  );
  write(
    'test/a/direct.test.ts',
    "import { onScaleOut } from '../helpers/deployment.js';\ndescribe.skipIf(onScaleOut)('x', () => {});\n",
  );

  it('follows names through helpers, and ignores other exports of the same files and type-only imports', () => {
    expect(deploymentDependentSuites(root)).toEqual([
      'test/a/direct.test.ts',
      'test/a/through-wrapper.test.ts',
    ]);
  });
});
