import { chmod, chown, mkdir, mkdtemp, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectorContext } from '../../src/connectors/connector.js';
import { duckdbConnector } from '../../src/connectors/duckdb/duckdb-connector.js';
import { organizationDir, resolveUnderRoot } from '../../src/connectors/file-path.js';
import { sqliteConnector } from '../../src/connectors/sqlite/sqlite-connector.js';
import { AppError } from '../../src/core/errors.js';
import { EgressPolicy } from '../../src/net/egress-policy.js';

/** base/root is QRUN_FILE_ROOT, base/root/org an organization's directory, base/outside elsewhere. */
let base: string;
let root: string;
let org: string;
let outside: string;

beforeAll(async () => {
  base = await realpath(await mkdtemp(join(tmpdir(), 'qrun-file-path-')));
  root = join(base, 'root');
  org = join(root, 'org');
  outside = join(base, 'outside');
  await mkdir(join(org, 'sub'), { recursive: true, mode: 0o700 });
  await mkdir(outside);
  await writeFile(join(org, 'db.sqlite'), '');
  await writeFile(join(org, 'sub', 'nested.duckdb'), '');
  await writeFile(join(outside, 'secret.sqlite'), '');
  await symlink(join(outside, 'secret.sqlite'), join(org, 'link-out.sqlite'));
  await symlink(outside, join(org, 'dir-out'));
  await symlink(join(org, 'db.sqlite'), join(org, 'link-in.sqlite'));
  await symlink(join(org, 'sub'), join(org, 'dir-in'));
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

function thrown(fn: () => unknown): AppError {
  try {
    fn();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected an AppError');
}

/** The AppError resolveUnderRoot throws, checked to be a 400 naming the field without the server's paths. */
function refusal(input: string): AppError {
  const error = thrown(() => resolveUnderRoot(input, org, 'path'));
  expect(error.status).toBe(400);
  expect(error.key).toBe('invalid_configuration');
  expect(error.message).toContain('configuration.path');
  expect(error.metadata).toEqual({ field: 'configuration.path' });
  expect(error.message).not.toContain(base);
  return error;
}

describe('organizationDir', () => {
  it('creates the directory with mode 0700 and returns its real path', async () => {
    const dir = join(root, 'fresh-org');
    expect(organizationDir(dir)).toBe(dir);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    // Again (or from another process at the same moment): the existing directory is checked and used.
    expect(organizationDir(dir)).toBe(dir);
  });

  it('refuses a symlink planted at the organization’s name, saying so without the absolute path', async () => {
    await symlink(outside, join(root, 'linked-org'));
    const error = thrown(() => organizationDir(join(root, 'linked-org')));
    expect(error.status).toBe(500);
    expect(error.key).toBe('file_directory_unusable');
    expect(error.message).toContain('$QRUN_FILE_ROOT/linked-org');
    expect(error.message).toContain('symbolic link');
    expect(error.message).not.toContain(base);
  });

  it('refuses a file at that name, and a directory others may write to', async () => {
    await writeFile(join(root, 'file-org'), '');
    expect(thrown(() => organizationDir(join(root, 'file-org'))).message).toContain('not a directory');
    await mkdir(join(root, 'open-org'));
    await chmod(join(root, 'open-org'), 0o777);
    expect(thrown(() => organizationDir(join(root, 'open-org'))).message).toContain(
      'writable by other users',
    );
  });

  it.runIf(process.getuid?.() === 0)('refuses a directory that belongs to another user', async () => {
    await mkdir(join(root, 'foreign-org'), { mode: 0o700 });
    await chown(join(root, 'foreign-org'), 65534, 65534);
    expect(thrown(() => organizationDir(join(root, 'foreign-org'))).message).toContain(
      'belongs to user 65534',
    );
  });

  it('says so when the file root itself is missing', () => {
    expect(thrown(() => organizationDir(join(base, 'no-root', 'org'))).message).toContain(
      'QRUN_FILE_ROOT does not exist',
    );
  });
});

describe('resolveUnderRoot', () => {
  it('resolves a relative path against the organization’s directory', () => {
    expect(resolveUnderRoot('db.sqlite', org, 'path')).toBe(join(org, 'db.sqlite'));
    expect(resolveUnderRoot('sub/nested.duckdb', org, 'path')).toBe(join(org, 'sub', 'nested.duckdb'));
    expect(resolveUnderRoot('./sub//./nested.duckdb', org, 'path')).toBe(join(org, 'sub', 'nested.duckdb'));
  });

  it('refuses `..` anywhere, even when it would stay inside', () => {
    for (const input of [
      '../outside/secret.sqlite',
      '../x',
      'sub/../../outside/secret.sqlite',
      '..',
      'sub/../db.sqlite',
    ]) {
      expect(refusal(input).message).toContain('must not contain ".."');
    }
    expect(refusal('../org/db.sqlite').message).toContain('"../org/db.sqlite"');
  });

  it('refuses absolute paths, inside the directory or not, without repeating them', () => {
    for (const input of [join(org, 'db.sqlite'), join(outside, 'secret.sqlite'), '/etc/passwd']) {
      const error = refusal(input);
      expect(error.message).toContain('absolute paths are refused');
      expect(error.message).not.toContain(input);
    }
  });

  it('refuses symbolic links anywhere in the path, wherever they point', () => {
    for (const input of [
      'link-out.sqlite',
      'dir-out/secret.sqlite',
      'dir-out/nope.sqlite',
      'link-in.sqlite',
      'dir-in/nested.duckdb',
    ]) {
      expect(refusal(input).message).toContain('symbolic link');
    }
  });

  it('refuses a missing file, saying it does not exist, with the path as given', () => {
    expect(refusal('typo.sqlite').message).toContain('("typo.sqlite") names a file that does not exist');
    expect(refusal('nodir/typo.sqlite').message).toContain('does not exist');
    expect(refusal('db.sqlite/below').message).toContain('does not exist');
  });

  it('refuses directories and empty paths', () => {
    expect(refusal('sub').message).toContain('not a directory');
    expect(refusal('.').message).toContain('not a directory');
    expect(refusal('').message).toContain('must be a file path');
    expect(refusal('a\0b').message).toContain('must be a file path');
  });

  it('keeps an already qualified field name', () => {
    expect(thrown(() => resolveUnderRoot('../x', org, 'configuration.path')).metadata).toEqual({
      field: 'configuration.path',
    });
  });
});

describe('validateConfig of the file engines', () => {
  const context = (): ConnectorContext => ({ fileDir: org, egress: new EgressPolicy() });

  it('keeps the path exactly as the client gave it', () => {
    expect(sqliteConnector.validateConfig({ path: 'db.sqlite' }, context())).toEqual({
      path: 'db.sqlite',
      read_only: true,
    });
    expect(duckdbConnector.validateConfig({ path: './sub/nested.duckdb' }, context())).toEqual({
      path: './sub/nested.duckdb',
      read_only: true,
    });
  });

  it('fills read_only: true unless the configuration says false', () => {
    for (const connector of [sqliteConnector, duckdbConnector]) {
      expect(connector.parseConfig({ path: 'db.sqlite' })).toEqual({
        path: 'db.sqlite',
        read_only: true,
      });
      expect(connector.parseConfig({ path: 'db.sqlite', read_only: false })).toEqual({
        path: 'db.sqlite',
        read_only: false,
      });
    }
  });

  it('allows :memory: for DuckDB', () => {
    expect(duckdbConnector.validateConfig({ path: ':memory:' }, context())).toEqual({
      path: ':memory:',
      read_only: true,
    });
  });

  it('refuses :memory: for SQLite', () => {
    expect(() => sqliteConnector.validateConfig({ path: ':memory:' }, context())).toThrow(
      /configuration\.path must name a database file/,
    );
  });

  it('refuses paths outside the directory for both engines', () => {
    for (const connector of [sqliteConnector, duckdbConnector]) {
      expect(() => connector.validateConfig({ path: '../outside/secret.sqlite' }, context())).toThrow(
        AppError,
      );
    }
  });
});
