import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ResultStoreError, pageNumber, resultKey } from './result-store.js';
import type { ResultStore } from './result-store.js';

export interface FsResultStoreOptions {
  /**
   * Flush each page to the disk before it gets its final name, so a power cut cannot leave a named
   * but empty page. Default true; turning it off only trades that for speed on slow disks.
   */
  fsync?: boolean;
}

/**
 * The embedded deployment's result store: one file per page at `<root>/<id[0..2)>/<id>/<page>.json`.
 * The two-character fan-out keeps any one directory small however many results are kept.
 *
 * A page is written to `.<page>.json.<random>.tmp` in the same directory and renamed into place, so a
 * crash leaves at worst a stray temp file (which getPage never reads and deleteResult removes), never a
 * half page under the final name. Files are created 0600 and directories 0700: results are user data.
 */
export class FsResultStore implements ResultStore {
  readonly root: string;
  private readonly fsync: boolean;
  private closed = false;

  constructor(root: string, options: FsResultStoreOptions = {}) {
    this.root = resolve(root);
    this.fsync = options.fsync ?? true;
  }

  async putPage(queryId: string, page: number, bytes: Buffer): Promise<void> {
    this.assertOpen();
    const dir = this.resultDir(resultKey(queryId));
    const n = pageNumber(page);
    const finalPath = join(dir, `${n}.json`);
    const tempPath = join(dir, `.${n}.json.${randomBytes(8).toString('hex')}.tmp`);

    let handle: FileHandle | undefined;
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      handle = await open(tempPath, 'wx', 0o600);
      await handle.writeFile(bytes);
      if (this.fsync) await handle.datasync();
      await handle.close();
      handle = undefined;
      await rename(tempPath, finalPath);
    } catch (error) {
      await handle?.close().catch(() => undefined);
      await unlink(tempPath).catch(() => undefined);
      throw new ResultStoreError(
        `Could not write page ${n} of result ${queryId}: ${describe(error)}`,
        'put',
        {
          cause: error,
        },
      );
    }
  }

  async getPage(queryId: string, page: number): Promise<Buffer | undefined> {
    this.assertOpen();
    const path = join(this.resultDir(resultKey(queryId)), `${pageNumber(page)}.json`);
    try {
      return await readFile(path);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw new ResultStoreError(
        `Could not read page ${page} of result ${queryId}: ${describe(error)}`,
        'get',
        {
          cause: error,
        },
      );
    }
  }

  async deleteResult(queryId: string): Promise<void> {
    this.assertOpen();
    const dir = this.resultDir(resultKey(queryId));
    try {
      // The fan-out directory stays: removing it could race with another result's putPage.
      await rm(dir, { recursive: true, force: true });
    } catch (error) {
      throw new ResultStoreError(`Could not delete result ${queryId}: ${describe(error)}`, 'delete', {
        cause: error,
      });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** `id` is already a validated lower-case UUID, so it cannot climb out of the root. */
  private resultDir(id: string): string {
    return join(this.root, id.slice(0, 2), id);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('The result store is closed.');
  }
}

function errorCode(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
