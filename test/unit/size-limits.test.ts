import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { AppError } from '../../src/core/errors.js';
import { FsResultStore } from '../../src/results/fs-result-store.js';
import { ResultStoreError, isStorageFull } from '../../src/results/result-store.js';
import { S3ResultStore } from '../../src/results/s3-result-store.js';

const GiB = 1024 ** 3;

describe('size limit settings', () => {
  it('have defaults', () => {
    expect(loadConfig({})).toMatchObject({
      maxResultBytes: 10 * GiB,
      minFreeBytes: GiB,
      duckdbThreads: Math.min(2, availableParallelism()),
      duckdbMemoryBytes: GiB,
      duckdbMaxTempBytes: 10 * GiB,
    });
  });

  it('take whole numbers of bytes', () => {
    const c = loadConfig({
      QRUN_MAX_RESULT_BYTES: '200000',
      QRUN_MIN_FREE_BYTES: '0',
      QRUN_DUCKDB_THREADS: '8',
      QRUN_DUCKDB_MEMORY_BYTES: String(64 * 1024 * 1024),
      QRUN_DUCKDB_MAX_TEMP_BYTES: '0',
    });
    expect(c).toMatchObject({
      maxResultBytes: 200_000,
      minFreeBytes: 0,
      duckdbThreads: 8,
      duckdbMemoryBytes: 64 * 1024 * 1024,
      duckdbMaxTempBytes: 0,
    });
  });

  it.each([
    ['QRUN_MAX_RESULT_BYTES', '10GiB'],
    ['QRUN_MAX_RESULT_BYTES', '100'],
    ['QRUN_MIN_FREE_BYTES', '-1'],
    ['QRUN_DUCKDB_THREADS', '0'],
    ['QRUN_DUCKDB_MEMORY_BYTES', '1000'],
    ['QRUN_DUCKDB_MAX_TEMP_BYTES', '99999999999999999999'],
  ])('refuse %s=%s, naming it', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^${name}: `));
  });
});

describe('assertRoom', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'qrun-room-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const free = () => {
    const { bavail, bsize } = statfsSync(root);
    return bavail * bsize;
  };

  it('refuses with 503 storage_full below the reserve, on the volume of a root not yet created', async () => {
    const store = new FsResultStore(path.join(root, 'not', 'yet'), { minFreeBytes: free() + 2 ** 40 });
    const error = await store.assertRoom().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ status: 503, key: 'storage_full' });
    expect((error as AppError).headers?.['retry-after']).toBeDefined();
    expect(isStorageFull(error)).toBe(true);
  });

  it('counts the bytes about to be written against the reserve', async () => {
    const store = new FsResultStore(root, { minFreeBytes: 1 });
    await expect(store.assertRoom()).resolves.toBeUndefined();
    await expect(store.assertRoom(free() + 2 ** 40)).rejects.toMatchObject({ key: 'storage_full' });
  });

  it('checks nothing with no reserve, and never on S3', async () => {
    await expect(new FsResultStore(root).assertRoom(2 ** 50)).resolves.toBeUndefined();
    const s3 = new S3ResultStore({
      bucket: 'qrun-test',
      prefix: '',
      region: 'us-east-1',
      forcePathStyle: true,
    });
    await expect(s3.assertRoom()).resolves.toBeUndefined();
    await s3.close();
  });

  it('a write that found the disk or a quota full counts as storage full, other failures do not', () => {
    const failure = (code: string) =>
      new ResultStoreError('Could not write', 'put', { cause: Object.assign(new Error(code), { code }) });
    expect(isStorageFull(failure('ENOSPC'))).toBe(true);
    expect(isStorageFull(failure('EDQUOT'))).toBe(true);
    expect(isStorageFull(failure('EACCES'))).toBe(false);
    expect(isStorageFull(new AppError(503, 'unavailable', 'x'))).toBe(false);
    expect(isStorageFull(new Error('ENOSPC'))).toBe(false);
  });
});
