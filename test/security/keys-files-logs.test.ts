/**
 * Attacks on what qrun keeps beside the API, tried against real `qrun start` processes on the
 * deployment under test:
 * - an old partner key still working after the operator rotated QRUN_PARTNER_KEY;
 * - other local users reading the data directory (every tenant's SQL, the keys);
 * - SQL sent as `?query=` (as Polytomic's SDKs send it) landing in request logs, and a client's
 *   X-Request-Id writing arbitrary text into every log line;
 * - a lost secrets key silently replaced by a new one, leaving every stored password unreadable.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretBox } from '../../src/crypto/secret-box.js';
import { deploymentEnv, type DeploymentEnv } from '../helpers/deployment.js';
import { freePort, runQrun, waitForHttp, type QrunProcess } from '../helpers/process.js';
import { request } from '../helpers/server.js';

const partnerKey = () => `qrun_p_${randomBytes(32).toString('base64url')}`;

/** One installation (data directory + deployment) that several processes start on in turn. */
class Installation {
  readonly dataDir = mkdtempSync(path.join(tmpdir(), 'qrun-sec-'));
  readonly fileRoot = mkdtempSync(path.join(tmpdir(), 'qrun-sec-files-'));
  private deployment: DeploymentEnv | undefined;
  env: Record<string, string> = {};

  async prepare(): Promise<this> {
    this.deployment = await deploymentEnv(this.dataDir);
    this.env = { ...this.deployment.env, QRUN_DATA_DIR: this.dataDir, QRUN_FILE_ROOT: this.fileRoot };
    return this;
  }

  /** Starts `qrun start` and waits until it is ready; `extra` wins over the installation's env. */
  async start(extra: Record<string, string> = {}): Promise<{ proc: QrunProcess; url: string }> {
    const port = await freePort();
    const proc = runQrun(['start'], { ...this.env, QRUN_PORT: String(port), ...extra });
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/readyz`, proc);
    return { proc, url };
  }

  async cleanup(): Promise<void> {
    await this.deployment?.cleanup();
    rmSync(this.dataDir, { recursive: true, force: true });
    rmSync(this.fileRoot, { recursive: true, force: true });
  }
}

async function stop(proc: QrunProcess): Promise<void> {
  proc.child.kill('SIGTERM');
  expect((await proc.exited).code).toBe(0);
}

const installations: Installation[] = [];
async function installation(): Promise<Installation> {
  const i = await new Installation().prepare();
  installations.push(i);
  return i;
}
afterAll(async () => {
  for (const i of installations) await i.cleanup();
});

describe('the partner key', () => {
  it('is the configured one only: a start with another key revokes the old one', async () => {
    const inst = await installation();
    const me = (url: string, key: string) => request(url, 'GET', '/api/me', { auth: { bearer: key } });

    // First start without QRUN_PARTNER_KEY: a generated key in <data>/partner-key.
    let run = await inst.start({ QRUN_PARTNER_KEY: '' });
    const generated = readFileSync(path.join(inst.dataDir, 'partner-key'), 'utf8').trim();
    expect((await me(run.url, generated)).status).toBe(200);
    await stop(run.proc);

    const first = partnerKey();
    run = await inst.start({ QRUN_PARTNER_KEY: first });
    expect((await me(run.url, first)).body.data.is_partner).toBe(true);
    const old = await me(run.url, generated);
    expect(old.status).toBe(401);
    expect(old.body.key).toBe('unauthorized');
    await stop(run.proc);

    const second = partnerKey();
    run = await inst.start({ QRUN_PARTNER_KEY: second });
    expect((await me(run.url, first)).status).toBe(401);
    expect((await me(run.url, generated)).status).toBe(401);
    expect((await me(run.url, second)).status).toBe(200);
    await stop(run.proc);

    // Rolling back to an earlier key makes it the valid one again, and only it.
    run = await inst.start({ QRUN_PARTNER_KEY: first });
    expect((await me(run.url, first)).status).toBe(200);
    expect((await me(run.url, second)).status).toBe(401);
    await stop(run.proc);
  });
});

describe('the data directory', () => {
  it('is 0700 and everything qrun writes in it is 0600 (directories 0700)', async () => {
    const inst = await installation();
    const { proc, url } = await inst.start();
    const key = readFileSync(path.join(inst.dataDir, 'admin-key'), 'utf8').trim();
    const auth = { bearer: key };
    const conn = await request(url, 'POST', '/api/connections', {
      auth,
      body: {
        name: 'pg',
        type: 'postgresql',
        configuration: { hostname: '127.0.0.1', database: 'test', username: 'postgres', password: 'pw' },
      },
    });
    expect(conn.status).toBe(200);
    const q = await request(url, 'POST', `/api/connections/${conn.body.data.id}/query`, {
      auth,
      body: { query: 'select n from generate_series(1, 3000) n' },
    });
    const done = await request(url, 'GET', `/api/queries/${q.body.data.id}?wait=30`, { auth });
    expect(done.body.data.status).toBe('done');
    await stop(proc);

    expect(statSync(inst.dataDir).mode & 0o777).toBe(0o700);
    const seen: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        const mode = statSync(full).mode & 0o777;
        seen.push(entry.name);
        expect(mode, full).toBe(entry.isDirectory() ? 0o700 : 0o600);
        if (entry.isDirectory()) walk(full);
      }
    };
    walk(inst.dataDir);
    expect(seen).toContain('admin-key');
    if (inst.env.QRUN_DATABASE_URL?.startsWith('sqlite:')) expect(seen).toContain('qrun.sqlite');
  });
});

describe('request logs', () => {
  it('never carry SQL sent as ?query=, and take X-Request-Id only as a short token', async () => {
    const inst = await installation();
    const { proc, url } = await inst.start({ QRUN_LOG_LEVEL: 'info' });
    const key = readFileSync(path.join(inst.dataDir, 'admin-key'), 'utf8').trim();
    const auth = { bearer: key };
    const conn = await request(url, 'POST', '/api/connections', {
      auth,
      body: {
        name: 'pg',
        type: 'postgresql',
        configuration: { hostname: '127.0.0.1', database: 'test', username: 'postgres' },
      },
    });
    const needle = `needle_${randomBytes(6).toString('hex')}`;
    const sql = encodeURIComponent(`select '${needle}' as secret_sauce`);
    const submitted = await request(url, 'POST', `/api/connections/${conn.body.data.id}/query?query=${sql}`, {
      auth,
      headers: { 'x-request-id': 'trace-42.A_b' },
    });
    expect(submitted.status).toBe(200);
    expect(submitted.headers.get('x-request-id')).toBe('trace-42.A_b');
    // Also a refused one (the URL is logged whatever the outcome) and a secret-looking parameter.
    const refused = await request(
      url,
      'POST',
      `/api/connections/not-an-id/query?query=${sql}&password=${needle}`,
      {
        auth,
      },
    );
    expect(refused.status).toBe(400);

    const hostile = ['has space', 'x'.repeat(65), 'line\u2028break', '<script>'];
    for (const id of hostile) {
      const r = await fetch(`${url}/api/me`, {
        headers: { authorization: `Bearer ${key}`, 'x-request-id': id },
      }).catch(() => undefined);
      if (!r) continue; // fetch itself refuses some header values; then nothing reached qrun
      const echoed = r.headers.get('x-request-id');
      expect(echoed).not.toBe(id);
      expect(echoed).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/);
    }
    await stop(proc);

    const logs = proc.stdout() + proc.stderr();
    expect(logs).toContain('"reqId":"trace-42.A_b"');
    expect(logs).toContain('query=[redacted]');
    expect(logs).not.toContain(needle);
    expect(logs).not.toContain('secret_sauce');
    for (const id of hostile) expect(logs).not.toContain(`"reqId":${JSON.stringify(id)}`);
  });
});

describe('the secrets key', () => {
  let inst: Installation;
  let keyId = '';
  beforeAll(async () => {
    inst = await installation();
    const { proc, url } = await inst.start();
    const key = readFileSync(path.join(inst.dataDir, 'admin-key'), 'utf8').trim();
    const conn = await request(url, 'POST', '/api/connections', {
      auth: { bearer: key },
      body: {
        name: 'sealed',
        type: 'postgresql',
        configuration: {
          hostname: '127.0.0.1',
          database: 'test',
          username: 'postgres',
          password: 'sealed-pw',
        },
        validate: false,
      },
    });
    expect(conn.status).toBe(200);
    await stop(proc);
    const configured = inst.env.QRUN_SECRET_KEY;
    const raw = configured
      ? Buffer.from(configured, 'base64')
      : Buffer.from(readFileSync(path.join(inst.dataDir, 'secret-key'), 'utf8').trim(), 'base64');
    keyId = SecretBox.keyIdOf(raw);
  });

  async function refusedStart(extra: Record<string, string>, why: RegExp): Promise<void> {
    const proc = runQrun(['start'], { ...inst.env, QRUN_PORT: String(await freePort()), ...extra });
    expect((await proc.exited).code).toBe(1);
    const lines = proc.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^qrun: cannot start: /);
    expect(lines[0]).toContain(`key id ${keyId}`);
    expect(lines[0]).toMatch(why);
  }

  it('a different key stops the start, naming the key id the stored secrets need', async () => {
    await refusedStart({ QRUN_SECRET_KEY: randomBytes(32).toString('base64') }, /has id [0-9a-f]{8}/);
  });

  it('a missing key file stops the start instead of generating a new key', async () => {
    // Without QRUN_SECRET_KEY the start role reads <data>/secret-key; take it away.
    const file = path.join(inst.dataDir, 'secret-key');
    try {
      unlinkSync(file);
    } catch {
      // The scale-out pass gives the key in the environment, so there is no file to take away.
    }
    await refusedStart({ QRUN_SECRET_KEY: '' }, /is missing/);
    expect(() => statSync(file)).toThrow();
  });
});
