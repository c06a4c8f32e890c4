import { describe, expect, it } from 'vitest';
import { PageWriter } from '../../src/encoding/page-writer.js';
import { drainMicrotasks } from '../helpers/wait.js';

const row = (i: number): string => `{"i":${i}}`;

/** A sink whose writes stay pending until released, oldest first. */
function manualSink() {
  const pending: { index: number; release: () => void; fail: (e: unknown) => void }[] = [];
  const stored: number[] = [];
  return {
    pending,
    stored,
    sink: (index: number) =>
      new Promise<void>((resolve, reject) => {
        pending.push({
          index,
          release: () => {
            stored.push(index);
            resolve();
          },
          fail: reject,
        });
      }),
  };
}

/** Every reaction that can run without the manual sink has run (nothing here waits on time or I/O). */
const tick = drainMicrotasks;

describe('PageWriter with writesInFlight', () => {
  it('keeps taking rows while up to that many pages are being stored', async () => {
    const { pending, stored, sink } = manualSink();
    const writer = new PageWriter({ maxRows: 1, maxBytes: 1000, sink, writesInFlight: 3 });
    await writer.push(row(0));
    await writer.push(row(1));
    expect(pending.map((p) => p.index)).toEqual([0, 1]);
    // The third page makes three writes in flight: the push waits for the oldest.
    let third = false;
    const pushing = writer.push(row(2)).then(() => (third = true));
    await tick();
    expect(third).toBe(false);
    pending[0]!.release();
    await pushing;
    expect(stored).toEqual([0]);

    let finished = false;
    const finishing = writer.finish().then((summary) => {
      finished = true;
      return summary;
    });
    await tick();
    expect(finished).toBe(false);
    pending[2]!.release();
    pending[1]!.release();
    expect(await finishing).toEqual({ pageCount: 3, rowCount: 3, pageRowCounts: [1, 1, 1] });
    expect(stored.sort()).toEqual([0, 1, 2]);
  });

  it('reports a failed write at a later push or at finish, and for good', async () => {
    const { pending, sink } = manualSink();
    const boom = new Error('disk full');
    const writer = new PageWriter({ maxRows: 1, maxBytes: 1000, sink, writesInFlight: 4 });
    await writer.push(row(0));
    pending[0]!.fail(boom);
    await tick();
    await expect(writer.push(row(1))).rejects.toBe(boom);
    await expect(writer.finish()).rejects.toBe(boom);
  });

  it('settle() waits for every running write and never rejects', async () => {
    const { pending, sink } = manualSink();
    const writer = new PageWriter({ maxRows: 1, maxBytes: 1000, sink, writesInFlight: 4 });
    await writer.push(row(0));
    await writer.push(row(1));
    let settled = false;
    const settling = writer.settle().then(() => (settled = true));
    pending[0]!.fail(new Error('lost'));
    await tick();
    expect(settled).toBe(false);
    pending[1]!.release();
    await settling;
    expect(settled).toBe(true);
  });

  it('refuses a limit that is not a positive integer', () => {
    const sink = async () => undefined;
    expect(() => new PageWriter({ sink, maxRows: 1, maxBytes: 10, writesInFlight: 0 })).toThrow(RangeError);
    expect(() => new PageWriter({ sink, maxRows: 1, maxBytes: 10, writesInFlight: 1.5 })).toThrow(RangeError);
  });
});
