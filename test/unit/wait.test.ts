/** The suite's polling helper fails loudly: a condition that never comes is an error naming it. */
import { describe, expect, it } from 'vitest';
import { drainMicrotasks, waitUntil } from '../helpers/wait.js';

describe('waitUntil', () => {
  it('returns the first truthy value of the condition', async () => {
    let calls = 0;
    const value = await waitUntil('the third call', () => (++calls >= 3 ? { calls } : undefined), {
      intervalMs: 0,
    });
    expect(value).toEqual({ calls: 3 });
  });

  it('throws, naming what it waited for and the last value, when the condition never comes', async () => {
    await expect(waitUntil('a miracle', () => false, { timeoutMs: 20, intervalMs: 5 })).rejects.toThrow(
      /^timed out after 20 ms waiting for a miracle \(last: false\)$/,
    );
    let state = 'created';
    await expect(
      waitUntil(
        () => `the query to end (its status: ${state})`,
        () => {
          state = 'running';
          return false;
        },
        { timeoutMs: 20, intervalMs: 5 },
      ),
    ).rejects.toThrow(/waiting for the query to end \(its status: running\)/);
  });

  it('ends at once with the error of a condition that throws', async () => {
    let calls = 0;
    await expect(
      waitUntil('a process that died', () => {
        calls++;
        throw new Error('it exited early');
      }),
    ).rejects.toThrow('it exited early');
    expect(calls).toBe(1);
  });
});

describe('drainMicrotasks', () => {
  it('resolves after every promise reaction that needs no timer or I/O', async () => {
    const events: string[] = [];
    void Promise.resolve()
      .then(() => events.push('first'))
      .then(() => Promise.resolve())
      .then(() => events.push('chained'));
    await drainMicrotasks();
    expect(events).toEqual(['first', 'chained']);
  });
});
