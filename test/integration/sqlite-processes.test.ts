/**
 * SQLite worker processes started ahead of need (src/connectors/sqlite/sqlite-processes.ts): real forks of
 * sqlite-worker, as the connector uses them. A statement takes a started spare, a replacement starts, no
 * process ever runs a second statement, dead spares are skipped, and idle spares exit.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { SpareProcesses, sqliteProcesses } from '../../src/connectors/sqlite/sqlite-processes.js';
import { waitUntil } from '../helpers/wait.js';
import { sqliteFixture } from '../helpers/sqlite-fixture.js';

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

const pools: SpareProcesses[] = [];
function pool(count: number, idleMs = 60_000): SpareProcesses {
  const made = new SpareProcesses(count, idleMs);
  pools.push(made);
  return made;
}
afterEach(() => {
  for (const p of pools.splice(0)) p.drain();
});

describe('SQLite spare processes', () => {
  it('hand a statement a process that was started before it asked, and start a replacement', async () => {
    const spares = pool(2);
    const first = spares.take(); // none waiting yet: started on the spot
    first.kill('SIGKILL');
    await waitUntil('two spares ready', () => spares.settled);
    const waiting = spares.waitingPids;
    expect(waiting).toHaveLength(2);
    const taken = spares.take();
    expect(waiting).toContain(taken.pid);
    expect(spares.waitingPids).not.toContain(taken.pid);
    await waitUntil('the replacement to be ready', () => spares.settled);
    expect(spares.waitingPids).toHaveLength(2);
    taken.kill('SIGKILL');
  });

  it('never give out a process twice', async () => {
    const spares = pool(2);
    const seen = new Set<number>();
    for (let i = 0; i < 6; i++) {
      const child = spares.take();
      expect(seen.has(child.pid!)).toBe(false);
      seen.add(child.pid!);
      child.kill('SIGKILL');
      await waitUntil('the spares to be ready again', () => spares.settled);
    }
  });

  it('skip a spare that died while it waited, and replace it', async () => {
    const spares = pool(1);
    spares.take().kill('SIGKILL');
    await waitUntil('a spare ready', () => spares.settled);
    const [doomed] = spares.waitingPids;
    process.kill(doomed!, 'SIGKILL');
    await waitUntil('the dead spare to leave the pool', () => !spares.waitingPids.includes(doomed!));
    const child = spares.take();
    expect(child.pid).not.toBe(doomed);
    expect(child.connected).toBe(true);
    child.kill('SIGKILL');
  });

  it('exit after a while without statements', async () => {
    const spares = pool(2, 2_000);
    spares.take().kill('SIGKILL');
    await waitUntil('two spares', () => spares.waiting === 2);
    const waiting = spares.waitingPids;
    await waitUntil('the idle spares to exit', () => spares.waiting === 0 && !waiting.some(alive));
  });

  it('serve the connector: statements keep running when every spare has been killed from outside', async () => {
    const { config, context } = await sqliteFixture.setup();
    const one = async (sql: string) => {
      const stream = await sqliteFixture.connector.stream(
        config,
        sql,
        [],
        { signal: new AbortController().signal, batchSize: 10 },
        context,
      );
      const rows = [];
      for await (const batch of stream.rows) rows.push(...batch);
      return rows.map((r) => Number(r[0]));
    };
    try {
      expect(await one('SELECT 1 AS one')).toEqual([1]);
      await waitUntil('the connector’s spares to be ready', () => sqliteProcesses.settled);
      const killed = sqliteProcesses.waitingPids;
      for (const pid of killed) process.kill(pid, 'SIGKILL');
      // (A spare killed in the instant before a statement takes it fails that statement, as a process
      // killed mid-statement does; one killed earlier has left the pool by then.)
      await waitUntil('the killed spares to leave the pool', () =>
        killed.every((pid) => !sqliteProcesses.waitingPids.includes(pid)),
      );
      expect(await one('SELECT 2 AS two')).toEqual([2]);
    } finally {
      await sqliteFixture.teardown();
    }
  });
});
