import { describe, expect, it } from 'vitest';
import { PageWriter, ResultTooLargeError, RowTooLargeError } from '../../src/encoding/page-writer.js';
import type { PageSink } from '../../src/encoding/page-writer.js';
import { drainMicrotasks } from '../helpers/wait.js';

interface Page {
  index: number;
  bytes: Buffer;
  rowCount: number;
}

function collector(): { pages: Page[]; sink: PageSink } {
  const pages: Page[] = [];
  return {
    pages,
    sink: async (index, bytes, rowCount) => {
      pages.push({ index, bytes, rowCount });
    },
  };
}

async function writeAll(rows: string[], maxRows: number, maxBytes: number) {
  const { pages, sink } = collector();
  const writer = new PageWriter({ maxRows, maxBytes, sink });
  for (const row of rows) await writer.push(row);
  const summary = await writer.finish();
  return { pages, summary };
}

const row = (i: number, pad = ''): string => `{"i":${i},"s":"${pad}"}`;

/** Checks everything a reader relies on, for any input and limits. */
function checkPages(rows: string[], pages: Page[], maxRows: number, maxBytes: number): void {
  const byteLength = (s: string) => Buffer.byteLength(s, 'utf8');
  let next = 0;
  pages.forEach((page, p) => {
    expect(page.index).toBe(p);
    const pageRows = rows.slice(next, next + page.rowCount);
    // Exact bytes of the JSON array of exactly these rows.
    expect(page.bytes.equals(Buffer.from(`[${pageRows.join(',')}]`, 'utf8'))).toBe(true);
    expect(page.rowCount).toBeGreaterThan(0);
    expect(page.rowCount).toBeLessThanOrEqual(maxRows);
    if (page.rowCount > 1) expect(page.bytes.length).toBeLessThanOrEqual(maxBytes);
    next += page.rowCount;
    // Greedy: a page closed early only because the next row would not fit.
    const following = rows[next];
    if (following !== undefined && page.rowCount < maxRows) {
      expect(page.bytes.length + 1 + byteLength(following)).toBeGreaterThan(maxBytes);
    }
  });
  expect(next).toBe(rows.length);
  // All pages together are all rows, in order, each once.
  const joined = pages.map((page) => page.bytes.toString('utf8').slice(1, -1)).join(',');
  expect(joined).toBe(rows.join(','));
}

describe('PageWriter', () => {
  it('makes no pages for no rows', async () => {
    const { pages, summary } = await writeAll([], 10, 1000);
    expect(pages).toEqual([]);
    expect(summary).toEqual({ pageCount: 0, rowCount: 0, pageRowCounts: [] });
  });

  it('makes one page for one row', async () => {
    const { pages, summary } = await writeAll(['{"a":1}'], 10, 1000);
    expect(pages.map((p) => p.bytes.toString())).toEqual(['[{"a":1}]']);
    expect(summary).toEqual({ pageCount: 1, rowCount: 1, pageRowCounts: [1] });
  });

  it('cuts at the row limit', async () => {
    const rows = Array.from({ length: 2500 }, (_, i) => row(i));
    const { pages, summary } = await writeAll(rows, 1000, 4 * 1024 * 1024);
    expect(summary).toEqual({ pageCount: 3, rowCount: 2500, pageRowCounts: [1000, 1000, 500] });
    checkPages(rows, pages, 1000, 4 * 1024 * 1024);
    expect((JSON.parse(pages[2]?.bytes.toString() ?? '') as { i: number }[])[0]?.i).toBe(2000);
  });

  it('does not add an empty page when rows fill the last page exactly', async () => {
    const rows = Array.from({ length: 2000 }, (_, i) => row(i));
    const { pages, summary } = await writeAll(rows, 1000, 1 << 22);
    expect(summary.pageRowCounts).toEqual([1000, 1000]);
    expect(pages).toHaveLength(2);
  });

  it('cuts at the byte limit, counting brackets and commas', async () => {
    const r = '{"v":"xxxx"}'; // 12 bytes
    const rows = Array.from({ length: 7 }, () => r);
    // [r,r,r] = 2 + 3 * 12 + 2 = 40 bytes.
    expect((await writeAll(rows, 100, 40)).summary.pageRowCounts).toEqual([3, 3, 1]);
    expect((await writeAll(rows, 100, 41)).summary.pageRowCounts).toEqual([3, 3, 1]);
    expect((await writeAll(rows, 100, 39)).summary.pageRowCounts).toEqual([2, 2, 2, 1]);
    const { pages } = await writeAll(rows, 100, 40);
    expect(pages[0]?.bytes.length).toBe(40);
  });

  it('fills a page to exactly maxBytes when rows allow it', async () => {
    // 13-byte rows: the first rows are admitted on the cheap length bound, the rest on exact counts.
    const rows = Array.from({ length: 20 }, (_, i) => `{"v":"${String(i).padStart(5, '0')}"}`);
    expect(Buffer.byteLength(rows[0] ?? '')).toBe(13);
    // Seven rows: 2 + 7 * 13 + 6 = 99 bytes; an eighth would make 113.
    const { pages, summary } = await writeAll(rows, 100, 99);
    expect(summary.pageRowCounts).toEqual([7, 7, 6]);
    expect(pages[0]?.bytes.length).toBe(99);
    checkPages(rows, pages, 100, 99);
  });

  it('counts UTF-8 bytes, not UTF-16 units', async () => {
    const r = '{"v":"€€€😀"}'; // 6 + 9 + 4 + 2 = 21 bytes, 13 units
    expect(Buffer.byteLength(r)).toBe(21);
    const rows = Array.from({ length: 5 }, () => r);
    // Two rows: 2 + 21 + 1 + 21 = 45 bytes.
    const { pages, summary } = await writeAll(rows, 100, 45);
    expect(summary.pageRowCounts).toEqual([2, 2, 1]);
    expect(pages[0]?.bytes.length).toBe(45);
    expect((await writeAll(rows, 100, 44)).summary.pageRowCounts).toEqual([1, 1, 1, 1, 1]);
    checkPages(rows, pages, 100, 45);
  });

  it('refuses a row too large for a page, naming its number in the result and its size', async () => {
    const big = row(4, 'x'.repeat(200)); // 214 bytes
    const { pages, sink } = collector();
    const writer = new PageWriter({ maxRows: 2, maxBytes: 50, sink });
    for (const r of [row(0), row(1), row(2), row(3)]) await writer.push(r);
    const refused = await writer.push(big).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RowTooLargeError);
    expect(refused).toMatchObject({ rowNumber: 5, rowBytes: 214, maxPageBytes: 50 });
    // For good: nothing more is taken or stored, and no page ever held the row.
    await expect(writer.push(row(5))).rejects.toBe(refused);
    await expect(writer.finish()).rejects.toBe(refused);
    expect(pages.map((p) => p.rowCount)).toEqual([2, 2]);
    expect(pages.every((p) => p.bytes.length <= 50)).toBe(true);
  });

  it('takes a row that exactly fills a page with its brackets, and refuses one byte more', async () => {
    const fits = row(0, 'y'.repeat(48 - row(0).length)); // 48 bytes: `[row]` is 50
    expect((await writeAll([fits, fits], 100, 50)).summary.pageRowCounts).toEqual([1, 1]);
    const over = row(0, 'y'.repeat(49 - row(0).length));
    await expect(writeAll([over], 100, 50)).rejects.toMatchObject({ rowNumber: 1, rowBytes: 49 });
  });

  it('refuses the page that would take the result past maxResultBytes, before storing it', async () => {
    const rows = Array.from({ length: 10 }, (_, i) => row(i)); // 14 bytes each: 46 bytes a page of 3
    const { pages, sink } = collector();
    const writer = new PageWriter({ maxRows: 3, maxBytes: 1000, maxResultBytes: 120, sink });
    let refused: unknown;
    for (const r of rows) {
      refused = await writer.push(r).catch((e: unknown) => e);
      if (refused !== undefined) break;
    }
    expect(refused).toBeInstanceOf(ResultTooLargeError);
    expect(pages.map((p) => p.bytes.length)).toEqual([46, 46]);
    // Exactly at the limit is allowed; finish() checks the last, partial page too.
    const exact = new PageWriter({ maxRows: 3, maxBytes: 1000, maxResultBytes: 92, sink: collector().sink });
    for (const r of rows.slice(0, 6)) await exact.push(r);
    expect((await exact.finish()).pageCount).toBe(2);
    const over = new PageWriter({ maxRows: 3, maxBytes: 1000, maxResultBytes: 92, sink: collector().sink });
    for (const r of rows.slice(0, 7)) await over.push(r);
    await expect(over.finish()).rejects.toBeInstanceOf(ResultTooLargeError);
  });

  it('holds for random rows and limits', async () => {
    const alphabet = ['a', 'é', '€', '😀', '\\"', ' '];
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let round = 0; round < 60; round++) {
      const rows = Array.from({ length: rand(300) }, (_, i) => {
        let s = '';
        const len = rand(rand(10) === 0 ? 400 : 30);
        for (let k = 0; k < len; k++) s += alphabet[rand(alphabet.length)];
        return row(i, s);
      });
      const maxRows = 1 + rand(50);
      // Room for the longest row with its brackets (a longer one fails the writer: tested above).
      const longest = Math.max(0, ...rows.map((r) => Buffer.byteLength(r, 'utf8')));
      const maxBytes = longest + 2 + rand(2000);
      const { pages, summary } = await writeAll(rows, maxRows, maxBytes);
      checkPages(rows, pages, maxRows, maxBytes);
      expect(summary.rowCount).toBe(rows.length);
      expect(summary.pageCount).toBe(pages.length);
      expect(summary.pageRowCounts).toEqual(pages.map((p) => p.rowCount));
    }
  });

  it('waits for the sink before taking more rows', async () => {
    let release: () => void = () => undefined;
    const stored: number[] = [];
    const writer = new PageWriter({
      maxRows: 2,
      maxBytes: 1000,
      sink: (index) =>
        new Promise<void>((resolve) => {
          release = () => {
            stored.push(index);
            resolve();
          };
        }),
    });
    await writer.push(row(0));
    let settled = false;
    const second = writer.push(row(1)).then(() => {
      settled = true;
    });
    // Everything that could run without the sink has run: the push still waits for it.
    await drainMicrotasks();
    expect(settled).toBe(false);
    // Pushing without awaiting the previous push is refused rather than silently reordered.
    await expect(writer.push(row(2))).rejects.toThrow(/pending/);
    release();
    await second;
    expect(settled).toBe(true);
    expect(stored).toEqual([0]);

    await writer.push(row(2));
    const finishing = writer.finish();
    await drainMicrotasks();
    release();
    expect(await finishing).toEqual({ pageCount: 2, rowCount: 3, pageRowCounts: [2, 1] });
  });

  it('waits for the sink when a row does not fit and closes the page before it', async () => {
    const events: string[] = [];
    const writer = new PageWriter({
      maxRows: 100,
      maxBytes: 20,
      sink: async (index, bytes) => {
        events.push(`start ${index}`);
        // Stored a turn of the event loop later, as a real store would be.
        await drainMicrotasks();
        events.push(`stored ${index} ${bytes.toString()}`);
      },
    });
    await writer.push('{"a":1}');
    await writer.push('{"a":2}');
    events.push('pushed 2');
    await writer.push('{"a":3}');
    events.push('pushed 3');
    await writer.finish();
    expect(events).toEqual([
      'pushed 2',
      'start 0',
      'stored 0 [{"a":1},{"a":2}]',
      'pushed 3',
      'start 1',
      'stored 1 [{"a":3}]',
    ]);
  });

  it('fails for good once the sink fails', async () => {
    const boom = new Error('disk full');
    const writer = new PageWriter({
      maxRows: 1,
      maxBytes: 1000,
      sink: async () => {
        throw boom;
      },
    });
    await expect(writer.push(row(0))).rejects.toBe(boom);
    await expect(writer.push(row(1))).rejects.toBe(boom);
    await expect(writer.finish()).rejects.toBe(boom);
  });

  it('refuses rows after finish', async () => {
    const writer = new PageWriter({ ...collector(), maxRows: 10, maxBytes: 1000 });
    await writer.finish();
    await expect(writer.push(row(0))).rejects.toThrow(/after finish/);
    await expect(writer.finish()).rejects.toThrow(/after finish/);
  });

  it('refuses limits that are not positive integers', () => {
    const { sink } = collector();
    expect(() => new PageWriter({ sink, maxRows: 0, maxBytes: 10 })).toThrow(RangeError);
    expect(() => new PageWriter({ sink, maxRows: 1.5, maxBytes: 10 })).toThrow(RangeError);
    expect(() => new PageWriter({ sink, maxRows: 1, maxBytes: 0 })).toThrow(RangeError);
    expect(() => new PageWriter({ sink, maxRows: 1, maxBytes: Number.NaN })).toThrow(RangeError);
  });
});
