import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { duckdbConnector } from '../../src/connectors/duckdb/duckdb-connector.js';
import { resolveUnderRoot } from '../../src/connectors/file-path.js';
import { sqliteConnector } from '../../src/connectors/sqlite/sqlite-connector.js';
import { AppError } from '../../src/core/errors.js';

let base: string;
let root: string;
let outside: string;

beforeAll(async () => {
  base = await realpath(await mkdtemp(join(tmpdir(), 'qrun-file-path-')));
  root = join(base, 'root');
  outside = join(base, 'outside');
  await mkdir(join(root, 'sub'), { recursive: true });
  await mkdir(outside);
  await writeFile(join(root, 'db.sqlite'), '');
  await writeFile(join(root, 'sub', 'nested.duckdb'), '');
  await writeFile(join(outside, 'secret.sqlite'), '');
  await symlink(join(outside, 'secret.sqlite'), join(root, 'link-out.sqlite'));
  await symlink(outside, join(root, 'dir-out'));
  await symlink(join(root, 'db.sqlite'), join(root, 'link-in.sqlite'));
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

/** The AppError resolveUnderRoot throws, for assertions. */
function refusal(input: string, fileRoot = root): AppError {
  try {
    resolveUnderRoot(input, fileRoot, 'path');
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error(`${input} was accepted`);
}

describe('resolveUnderRoot', () => {
  it('resolves a relative path against the root', () => {
    expect(resolveUnderRoot('db.sqlite', root, 'path')).toBe(join(root, 'db.sqlite'));
    expect(resolveUnderRoot('sub/nested.duckdb', root, 'path')).toBe(join(root, 'sub', 'nested.duckdb'));
    expect(resolveUnderRoot('./sub/../db.sqlite', root, 'path')).toBe(join(root, 'db.sqlite'));
  });

  it('accepts an absolute path inside the root', () => {
    expect(resolveUnderRoot(join(root, 'sub', 'nested.duckdb'), root, 'path')).toBe(
      join(root, 'sub', 'nested.duckdb'),
    );
  });

  it('follows a symlink that stays inside the root', () => {
    expect(resolveUnderRoot('link-in.sqlite', root, 'path')).toBe(join(root, 'db.sqlite'));
  });

  it('refuses `..` escapes with a 400 naming configuration.path', () => {
    for (const input of ['../outside/secret.sqlite', '../x', 'sub/../../outside/secret.sqlite', '..']) {
      const error = refusal(input);
      expect(error.status).toBe(400);
      expect(error.key).toBe('invalid_configuration');
      expect(error.message).toContain('configuration.path');
      expect(error.message).toContain('file root');
      expect(error.metadata).toEqual({ field: 'configuration.path' });
    }
  });

  it('refuses an absolute path outside the root', () => {
    expect(refusal(join(outside, 'secret.sqlite')).message).toContain('under the server’s file root');
    expect(refusal('/etc/passwd').status).toBe(400);
  });

  it('refuses symlinks inside the root that point outside (file or directory)', () => {
    expect(refusal('link-out.sqlite').message).toContain('under the server’s file root');
    expect(refusal('dir-out/secret.sqlite').message).toContain('under the server’s file root');
    // Even a missing file behind an escaping directory link says "outside", not "missing".
    expect(refusal('dir-out/nope.sqlite').message).toContain('under the server’s file root');
  });

  it('refuses a missing file, saying it does not exist', () => {
    const error = refusal('typo.sqlite');
    expect(error.status).toBe(400);
    expect(error.message).toContain('does not exist');
    expect(error.metadata).toEqual({ field: 'configuration.path' });
    expect(refusal('nodir/typo.sqlite').message).toContain('does not exist');
  });

  it('refuses directories and empty paths', () => {
    expect(refusal('sub').message).toContain('not a directory');
    expect(refusal('').status).toBe(400);
  });

  it('compares against the real path of the root', async () => {
    const alias = join(base, 'root-alias');
    await symlink(root, alias);
    expect(resolveUnderRoot('db.sqlite', alias, 'path')).toBe(join(root, 'db.sqlite'));
  });

  it('keeps an already qualified field name', () => {
    try {
      resolveUnderRoot('../x', root, 'configuration.path');
      expect.unreachable();
    } catch (error) {
      expect((error as AppError).metadata).toEqual({ field: 'configuration.path' });
    }
  });
});

describe('validateConfig of the file engines', () => {
  it('returns the resolved absolute path', () => {
    expect(sqliteConnector.validateConfig({ path: 'db.sqlite' }, { fileRoot: root })).toEqual({
      path: join(root, 'db.sqlite'),
    });
    expect(duckdbConnector.validateConfig({ path: 'sub/nested.duckdb' }, { fileRoot: root })).toEqual({
      path: join(root, 'sub', 'nested.duckdb'),
    });
  });

  it('allows :memory: for DuckDB', () => {
    expect(duckdbConnector.validateConfig({ path: ':memory:' }, { fileRoot: root })).toEqual({
      path: ':memory:',
    });
  });

  it('refuses :memory: for SQLite', () => {
    expect(() => sqliteConnector.validateConfig({ path: ':memory:' }, { fileRoot: root })).toThrow(
      /configuration\.path must name a database file/,
    );
  });

  it('refuses paths outside the root for both engines', () => {
    for (const connector of [sqliteConnector, duckdbConnector]) {
      expect(() =>
        connector.validateConfig({ path: '../outside/secret.sqlite' }, { fileRoot: root }),
      ).toThrow(AppError);
    }
  });
});
