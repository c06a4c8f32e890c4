import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitUntil } from './wait.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The compiled CLI; `npm test` builds it first (pretest). */
export const QRUN_BIN = path.join(REPO_ROOT, 'dist/src/cli/qrun.js');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface QrunProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs `qrun <args>` as a real child process with the given environment added. Without a
 * QRUN_FILE_ROOT in `env`, the process gets a temporary one of its own (removed when it exits)
 * instead of the default ./files in the working directory.
 */
export function runQrun(args: string[], env: Record<string, string>): QrunProcess {
  const fileRoot =
    env.QRUN_FILE_ROOT === undefined ? mkdtempSync(path.join(tmpdir(), 'qrun-files-')) : undefined;
  const child = spawn(process.execPath, [QRUN_BIN, ...args], {
    env: {
      ...process.env,
      QRUN_LOG_LEVEL: 'info',
      ...(fileRoot ? { QRUN_FILE_ROOT: fileRoot } : {}),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      if (fileRoot) rmSync(fileRoot, { recursive: true, force: true });
      resolve({ code, signal });
    }),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Polls until `url` answers 200; fails at once if the process dies, and names what it saw on timeout. */
export async function waitForHttp(url: string, proc: QrunProcess, timeoutMs = 30_000): Promise<void> {
  let dead = false;
  void proc.exited.then(() => (dead = true));
  await waitUntil(
    () => `${url} to answer 200:\n${proc.stderr()}\n${proc.stdout()}`,
    async () => {
      if (dead) throw new Error(`qrun exited early:\n${proc.stderr()}\n${proc.stdout()}`);
      try {
        return (await fetch(url)).status === 200;
      } catch {
        return false; // not listening yet
      }
    },
    { timeoutMs, intervalMs: 100 },
  );
}
