import { describe, expect, it } from 'vitest';
import { WarmSessions, type WarmSession } from '../../src/connectors/warm-sessions.js';
import { waitUntil } from '../helpers/wait.js';

/** A session that records whether it was ended, and can be lost as a dropped connection would be. */
class Recorded implements WarmSession {
  ended = 0;
  private listeners = new Set<() => void>();

  constructor(readonly name: string) {}

  end(): Promise<void> {
    this.ended++;
    return Promise.resolve();
  }

  onLost(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  lose(): void {
    for (const l of [...this.listeners]) l();
  }

  get listening(): number {
    return this.listeners.size;
  }
}

const pool = (limit = 2, idleMs = 60_000) => new WarmSessions({ limit, idleMs });

describe('WarmSessions', () => {
  it('gives a session back only to the same owner and key, most recently used first', () => {
    const p = pool(3);
    const a = new Recorded('a');
    const b = new Recorded('b');
    p.give('org1/conn1', 'k', a);
    p.give('org1/conn1', 'k', b);
    expect(p.take('org2/conn1', 'k')).toBeUndefined();
    expect(p.take('org1/conn2', 'k')).toBeUndefined();
    expect(p.take('org1/conn1', 'other configuration')).toBeUndefined();
    expect(p.take('org1/conn1', 'k')).toBe(b);
    expect(p.take('org1/conn1', 'k')).toBe(a);
    expect(p.take('org1/conn1', 'k')).toBeUndefined();
    expect(a.ended + b.ended).toBe(0);
    // Taken sessions are the caller's: the pool no longer listens for their loss.
    expect(a.listening + b.listening).toBe(0);
  });

  it('keeps at most `limit` idle sessions per owner, ending the oldest', () => {
    const p = pool(2);
    const [a, b, c] = [new Recorded('a'), new Recorded('b'), new Recorded('c')];
    p.give('o', 'k', a);
    p.give('o', 'k', b);
    p.give('o', 'k', c);
    expect(a.ended).toBe(1);
    expect(p.size).toBe(2);
    p.give('other', 'k', new Recorded('d'));
    expect(p.size).toBe(3);
  });

  it('ends a session idle for longer than idleMs', async () => {
    const p = pool(2, 30);
    const a = new Recorded('a');
    p.give('o', 'k', a);
    await waitUntil('the idle session to be ended', () => a.ended === 1);
    expect(p.take('o', 'k')).toBeUndefined();
  });

  it('drops a session whose connection was lost, without ending it twice', () => {
    const p = pool();
    const a = new Recorded('a');
    p.give('o', 'k', a);
    a.lose();
    expect(p.take('o', 'k')).toBeUndefined();
    expect(a.ended).toBe(1);
    a.lose();
    expect(a.ended).toBe(1);
  });

  it('forget() ends one owner’s sessions; close() ends all and keeps none after', async () => {
    const p = pool();
    const [a, b, c] = [new Recorded('a'), new Recorded('b'), new Recorded('c')];
    p.give('o1', 'k', a);
    p.give('o2', 'k', b);
    p.forget('o1');
    expect(a.ended).toBe(1);
    expect(p.take('o2', 'k')).toBe(b);
    p.give('o2', 'k', b);
    await p.close();
    expect(b.ended).toBe(1);
    expect(p.enabled).toBe(false);
    p.give('o2', 'k', c);
    expect(c.ended).toBe(1);
    expect(p.size).toBe(0);
  });

  it('keeps nothing when idleMs is 0 (QRUN_SESSION_IDLE_SECONDS=0)', () => {
    const p = pool(2, 0);
    const a = new Recorded('a');
    expect(p.enabled).toBe(false);
    p.give('o', 'k', a);
    expect(a.ended).toBe(1);
    expect(p.take('o', 'k')).toBeUndefined();
  });
});
