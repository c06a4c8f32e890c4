import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsResultStore } from '../../src/results/fs-result-store.js';
import { ResultStoreError } from '../../src/results/result-store.js';
import { resultStoreSuite } from '../helpers/result-store-suite.js';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'qrun-results-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

resultStoreSuite('files', () => new FsResultStore(join(root, 'suite')));
resultStoreSuite(
  'files without fsync',
  () => new FsResultStore(join(root, 'suite-nofsync'), { fsync: false }),
);

describe('FsResultStore layout and atomicity', () => {
  const store = () => new FsResultStore(join(root, 'layout'));
  const resultDir = (id: string) => join(root, 'layout', id.slice(0, 2), id);

  it('writes <root>/<id[0..2)>/<id>/<page>.json with nothing else left behind', async () => {
    const id = randomUUID();
    const s = store();
    await s.putPage(id, 0, Buffer.from('[0]'));
    await s.putPage(id, 7, Buffer.from('[7]'));
    expect((await readdir(resultDir(id))).sort()).toEqual(['0.json', '7.json']);
    expect((await stat(join(resultDir(id), '7.json'))).mode & 0o777).toBe(0o600);
  });

  it('never reads a leftover temp file as a page, and deletes it with the result', async () => {
    const id = randomUUID();
    const s = store();
    // What a crash between write and rename leaves behind.
    await mkdir(resultDir(id), { recursive: true });
    await writeFile(join(resultDir(id), '.3.json.0123456789abcdef.tmp'), '[{"half":');
    expect(await s.getPage(id, 3)).toBeUndefined();
    await s.deleteResult(id);
    await expect(stat(resultDir(id))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('leaves neither a final page nor a temp file when the write fails', async () => {
    const id = randomUUID();
    const s = store();
    // A directory where the page should go makes the rename fail after the temp file was written.
    await mkdir(join(resultDir(id), '2.json', 'blocker'), { recursive: true });
    const failure = s.putPage(id, 2, Buffer.from('[2]'));
    await expect(failure).rejects.toBeInstanceOf(ResultStoreError);
    await expect(failure).rejects.toMatchObject({ operation: 'put' });
    expect(await readdir(resultDir(id))).toEqual(['2.json']);
  });

  it('reports read failures other than a missing page as ResultStoreError', async () => {
    const id = randomUUID();
    const s = store();
    await mkdir(join(resultDir(id), '4.json'), { recursive: true });
    await expect(s.getPage(id, 4)).rejects.toBeInstanceOf(ResultStoreError);
  });

  it('stores ids lower-cased', async () => {
    const id = randomUUID();
    await store().putPage(id.toUpperCase(), 0, Buffer.from('[]'));
    expect(await readdir(resultDir(id))).toEqual(['0.json']);
  });

  it('lists only its results: names that are not lower-case UUIDs in their fan-out directory are left out', async () => {
    const base = join(root, 'listing');
    const s = new FsResultStore(base);
    const results = [randomUUID(), randomUUID(), randomUUID()].sort();
    for (const id of results) await s.putPage(id, 0, Buffer.from('[]'));
    const stranger = randomUUID();
    const elsewhere = stranger.startsWith('ff') ? 'fe' : 'ff';
    for (const dir of [
      join(base, stranger.slice(0, 2), stranger.toUpperCase()),
      join(base, stranger.slice(0, 2), `${stranger}.bak`),
      join(base, stranger.slice(0, 2), 'not-a-uuid'),
      join(base, elsewhere, stranger),
      join(base, 'zz', `zz${stranger.slice(2)}`),
      join(base, 'backup', stranger),
    ]) {
      await mkdir(dir, { recursive: true });
    }
    // A file named like a result, and a link to a directory elsewhere: neither is a result directory.
    await writeFile(join(base, stranger.slice(0, 2), stranger), 'x');
    await symlink(join(base, elsewhere), join(base, elsewhere, `${elsewhere}${stranger.slice(2, 35)}0`));
    await writeFile(join(base, 'README'), 'x');

    expect(await s.listResultIds(undefined, 100)).toEqual(results);
    expect(await s.listResultIds(results[0], 1)).toEqual([results[1]]);
    expect(await s.listResultIds(results[2], 100)).toEqual([]);
    expect(await new FsResultStore(join(root, 'never-written')).listResultIds(undefined, 10)).toEqual([]);
  });

  it('refuses calls after close', async () => {
    const s = store();
    await s.close();
    await expect(s.getPage(randomUUID(), 0)).rejects.toThrow(/closed/);
  });
});
