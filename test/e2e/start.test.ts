import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploymentEnv, type DeploymentEnv } from '../helpers/deployment.js';
import { freePort, runQrun, waitForHttp } from '../helpers/process.js';
import { waitUntil } from '../helpers/wait.js';

// Installations on the deployment under test (`qrun start` runs API and worker in one process on
// either), each test with its own, so that none depends on another having run.
const installations: { dataDir: string; deployment: DeploymentEnv }[] = [];

async function installation(): Promise<{ dataDir: string; env: Record<string, string> }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'qrun-e2e-'));
  const deployment = await deploymentEnv(dataDir);
  installations.push({ dataDir, deployment });
  return { dataDir, env: { ...deployment.env, QRUN_DATA_DIR: dataDir } };
}

afterAll(async () => {
  for (const { dataDir, deployment } of installations.splice(0)) {
    await deployment.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

describe('qrun start as a real process', () => {
  it('first start creates the admin key (0600), prints it once with a curl line, and serves it', async () => {
    const { dataDir, env } = await installation();
    const port = await freePort();
    const proc = runQrun(['start'], { ...env, QRUN_PORT: String(port) });
    const base = `http://127.0.0.1:${port}`;
    await waitForHttp(`${base}/readyz`, proc);
    // The banner is written right after listen.
    await waitUntil('the banner with its curl line', () => proc.stdout().includes('curl'));

    const adminKey = readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim();
    expect(adminKey).toMatch(/^qrun_u_/);
    // The secrets key is generated only when none is given (the scale-out pass gives one).
    const generated = ['admin-key', 'partner-key', ...(env.QRUN_SECRET_KEY ? [] : ['secret-key'])];
    for (const f of generated) {
      expect(statSync(path.join(dataDir, f)).mode & 0o777, f).toBe(0o600);
    }
    expect(existsSync(path.join(dataDir, 'secret-key'))).toBe(!env.QRUN_SECRET_KEY);
    expect(proc.stdout()).toContain(adminKey);
    expect(proc.stdout()).toContain(
      `curl -H "Authorization: Bearer $(cat ${path.join(dataDir, 'admin-key')})" ${base}/api/me`,
    );

    const me = await fetch(`${base}/api/me`, { headers: { authorization: `Bearer ${adminKey}` } });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { data: { email: string } }).data.email).toBe('admin@localhost');

    proc.child.kill('SIGTERM');
    const exit = await proc.exited;
    expect(exit.code).toBe(0);
    // Structured logs never carry the key.
    expect(proc.stdout().split(adminKey).length - 1).toBe(1);
    expect(proc.stderr()).not.toContain(adminKey);
  });

  it('a later start prints nothing secret and keeps the same key', async () => {
    const { dataDir, env } = await installation();
    // The first start, which creates the keys.
    const firstPort = await freePort();
    const first = runQrun(['start'], { ...env, QRUN_PORT: String(firstPort) });
    await waitForHttp(`http://127.0.0.1:${firstPort}/readyz`, first);
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    const adminKey = readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim();

    const port = await freePort();
    const proc = runQrun(['start'], { ...env, QRUN_PORT: String(port) });
    await waitForHttp(`http://127.0.0.1:${port}/readyz`, proc);
    const me = await fetch(`http://127.0.0.1:${port}/api/me`, {
      headers: { authorization: `Bearer ${adminKey}` },
    });
    expect(me.status).toBe(200);
    proc.child.kill('SIGINT');
    expect((await proc.exited).code).toBe(0);
    expect(proc.stdout()).not.toMatch(/qrun_[uop]_/);
    expect(proc.stderr()).not.toMatch(/qrun_[uop]_/);
  });

  describe('bad settings', () => {
    // One installation for these: each start stops at its configuration, before touching it.
    let env: Record<string, string> = {};
    beforeAll(async () => {
      ({ env } = await installation());
    });

    it.each([
      ['QRUN_PORT', 'eighty'],
      ['QRUN_PAGE_ROWS', '0'],
      ['QRUN_LOG_LEVEL', 'loud'],
      ['QRUN_SECRET_KEY', 'short'],
      ['QRUN_DATABASE_URL', 'mongodb://x'],
    ])('a bad %s stops the process with one line naming it', async (name, value) => {
      const proc = runQrun(['start'], { ...env, [name]: value });
      const exit = await proc.exited;
      expect(exit.code).toBe(1);
      const lines = proc.stderr().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^qrun: ${name}: `));
    });
  });
});
