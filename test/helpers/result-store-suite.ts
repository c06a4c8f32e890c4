import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ResultStore } from '../../src/results/result-store.js';

/**
 * The behaviour every ResultStore implementation must have (files, S3, ...). Each test gets a fresh
 * store from `makeStore`, closed afterwards; the implementation's own file owns any cleanup of the
 * storage behind it.
 */
export function resultStoreSuite(name: string, makeStore: () => Promise<ResultStore> | ResultStore): void {
  describe(`ResultStore contract: ${name}`, () => {
    let store: ResultStore;

    beforeEach(async () => {
      store = await makeStore();
    });

    afterEach(async () => {
      await store.close();
    });

    it('returns exactly the bytes that were put', async () => {
      const id = randomUUID();
      const bytes = Buffer.from('[{"a":1},{"b":"é😀"}]', 'utf8');
      await store.putPage(id, 0, bytes);
      const read = await store.getPage(id, 0);
      expect(read).toBeInstanceOf(Buffer);
      expect(read?.equals(bytes)).toBe(true);
    });

    it('keeps pages apart', async () => {
      const id = randomUUID();
      await Promise.all(
        [0, 1, 2, 10, 123_456].map((page) => store.putPage(id, page, Buffer.from(`[${page}]`))),
      );
      for (const page of [0, 1, 2, 10, 123_456]) {
        expect((await store.getPage(id, page))?.toString()).toBe(`[${page}]`);
      }
      expect(await store.getPage(id, 3)).toBeUndefined();
    });

    it('stores empty and large pages', async () => {
      const id = randomUUID();
      const large = Buffer.alloc(5 * 1024 * 1024 + 7, 0x61);
      await store.putPage(id, 0, Buffer.alloc(0));
      await store.putPage(id, 1, large);
      expect((await store.getPage(id, 0))?.length).toBe(0);
      expect((await store.getPage(id, 1))?.equals(large)).toBe(true);
    });

    it('reads a page into a frame: head, page and tail in one buffer', async () => {
      const id = randomUUID();
      const large = Buffer.alloc(3 * 1024 * 1024 + 5, 0x62);
      const frame = { head: Buffer.from('{"results":'), tail: Buffer.from(',"end":"é"}') };
      await store.putPage(id, 0, Buffer.from('[1,"😀"]'));
      await store.putPage(id, 1, large);
      await store.putPage(id, 2, Buffer.alloc(0));
      expect((await store.getPage(id, 0, frame))?.toString()).toBe('{"results":[1,"😀"],"end":"é"}');
      expect(
        (await store.getPage(id, 1, frame))?.equals(Buffer.concat([frame.head, large, frame.tail])),
      ).toBe(true);
      expect((await store.getPage(id, 2, frame))?.toString()).toBe('{"results":,"end":"é"}');
      expect(await store.getPage(id, 3, frame)).toBeUndefined();
    });

    it('returns undefined for a missing page or a missing result', async () => {
      expect(await store.getPage(randomUUID(), 0)).toBeUndefined();
      const id = randomUUID();
      await store.putPage(id, 0, Buffer.from('[]'));
      expect(await store.getPage(id, 1)).toBeUndefined();
    });

    it('replaces a page that is put again, whole', async () => {
      const id = randomUUID();
      await store.putPage(id, 0, Buffer.from('[1,2,3,4,5]'));
      await store.putPage(id, 0, Buffer.from('[9]'));
      expect((await store.getPage(id, 0))?.toString()).toBe('[9]');
    });

    it('treats the query id case-insensitively', async () => {
      const id = randomUUID();
      await store.putPage(id.toUpperCase(), 0, Buffer.from('[1]'));
      expect((await store.getPage(id, 0))?.toString()).toBe('[1]');
      await store.deleteResult(id.toUpperCase());
      expect(await store.getPage(id, 0)).toBeUndefined();
    });

    it('deletes every page of a result, and only that result', async () => {
      const id = randomUUID();
      // Same first characters, so file stores share a fan-out directory.
      const neighbour = id.slice(0, 8) + randomUUID().slice(8);
      await store.putPage(id, 0, Buffer.from('[0]'));
      await store.putPage(id, 1, Buffer.from('[1]'));
      await store.putPage(neighbour, 0, Buffer.from('[n]'));
      await store.deleteResult(id);
      expect(await store.getPage(id, 0)).toBeUndefined();
      expect(await store.getPage(id, 1)).toBeUndefined();
      expect((await store.getPage(neighbour, 0))?.toString()).toBe('[n]');
      // A deleted result can be written again (a re-run after expiry would).
      await store.putPage(id, 0, Buffer.from('[again]'));
      expect((await store.getPage(id, 0))?.toString()).toBe('[again]');
    });

    it('deletes idempotently', async () => {
      const id = randomUUID();
      await store.deleteResult(id);
      await store.putPage(id, 0, Buffer.from('[0]'));
      await store.deleteResult(id);
      await store.deleteResult(id);
      expect(await store.getPage(id, 0)).toBeUndefined();
    });

    const badIds = [
      '',
      'not-a-uuid',
      '../../etc/passwd',
      '43d893ef-322b-47da-badb-3cf10d13a556/../x',
      '43d893ef-322b-47da-badb-3cf10d13a55',
      ' 43d893ef-322b-47da-badb-3cf10d13a556',
      '43d893ef-322b-47da-badb-3cf10d13a556\0',
      '..',
    ];
    const badPages = [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1' as unknown as number];

    it('refuses ids that are not UUIDs, before touching storage', async () => {
      for (const bad of badIds) {
        await expect(store.putPage(bad, 0, Buffer.from('[]'))).rejects.toThrow(RangeError);
        await expect(store.getPage(bad, 0)).rejects.toThrow(RangeError);
        await expect(store.deleteResult(bad)).rejects.toThrow(RangeError);
      }
    });

    it('refuses page numbers that are not non-negative integers', async () => {
      const id = randomUUID();
      for (const bad of badPages) {
        await expect(store.putPage(id, bad, Buffer.from('[]'))).rejects.toThrow(RangeError);
        await expect(store.getPage(id, bad)).rejects.toThrow(RangeError);
      }
      expect(await store.getPage(id, 0)).toBeUndefined();
    });

    it('lists the stored results once each, in id order, after a cursor and a limit at a time', async () => {
      const ids: string[] = Array.from({ length: 5 }, () => randomUUID()).sort();
      for (const id of ids) {
        await store.putPage(id, 0, Buffer.from('[0]'));
        await store.putPage(id, 1, Buffer.from('[1]'));
      }
      // The store may hold other tests' results too: walk all of it, two at a time.
      const seen: string[] = [];
      let after: string | undefined;
      for (;;) {
        const batch = await store.listResultIds(after, 2);
        expect(batch.length).toBeLessThanOrEqual(2);
        seen.push(...batch);
        if (batch.length < 2) break;
        after = batch.at(-1);
      }
      expect(seen).toEqual([...seen].sort());
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.filter((id) => ids.includes(id))).toEqual(ids);

      const rest = await store.listResultIds(ids[2], 10_000);
      expect(rest.every((id) => id > ids[2]!)).toBe(true);
      expect(rest).toEqual(expect.arrayContaining([ids[3], ids[4]]));
      // A cursor in capitals is the same cursor.
      expect(await store.listResultIds(ids[2]!.toUpperCase(), 10_000)).toEqual(rest);
      expect((await store.listResultIds(ids[4], 10_000)).includes(ids[4]!)).toBe(false);
    });

    it('lists a result written with a capitalized id in lower case, and no longer once it is deleted', async () => {
      const id = randomUUID();
      await store.putPage(id.toUpperCase(), 0, Buffer.from('[]'));
      expect(await store.listResultIds(undefined, 10_000)).toContain(id);
      await store.deleteResult(id);
      expect(await store.listResultIds(undefined, 10_000)).not.toContain(id);
    });

    it('refuses a listing cursor that is not a UUID and a limit that is not a positive integer', async () => {
      for (const bad of badIds) {
        await expect(store.listResultIds(bad, 10)).rejects.toThrow(RangeError);
      }
      for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        await expect(store.listResultIds(undefined, bad)).rejects.toThrow(RangeError);
      }
    });
  });
}
