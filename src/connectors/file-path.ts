import { lstatSync, mkdirSync, realpathSync, type Stats } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';
import type { Static } from 'typebox';
import { AppError, badRequest } from '../core/errors.js';
import { configSchema, field } from './config-schema.js';

/**
 * The organization's own directory (`$QRUN_FILE_ROOT/<organization id>`), created on first use with
 * mode 0700, and checked before every use: it must be a real directory (lstat, so a symlink planted
 * at that name is refused, never followed), owned by qrun's user and writable by nobody else (who
 * could otherwise plant links in it). mkdir is atomic, so processes that create it at the same
 * moment all end up checking the one directory that won. Returns its real path (the file root itself
 * may sit behind a symlink the operator chose).
 *
 * A refusal is a 500 the operator has to fix; its message names the directory as
 * `$QRUN_FILE_ROOT/<organization id>`, never by the server's absolute path.
 */
export function organizationDir(fileDir: string): string {
  const label = `$QRUN_FILE_ROOT/${basename(fileDir)}`;
  const unusable = (why: string, cause?: unknown) =>
    new AppError(
      500,
      'file_directory_unusable',
      `The directory for this organization's files (${label}) ${why}; the operator must fix it (see docs/OPERATIONS.md).`,
      { cause },
    );
  try {
    mkdirSync(fileDir, { mode: 0o700 });
  } catch (error) {
    const code = errorCode(error);
    if (code === 'ENOENT') throw unusable('cannot be created: QRUN_FILE_ROOT does not exist', error);
    if (code !== 'EEXIST') throw unusable(`cannot be created (${code})`, error);
  }
  let stats: Stats;
  try {
    stats = lstatSync(fileDir);
  } catch (error) {
    throw unusable(`cannot be read (${errorCode(error)})`, error);
  }
  if (stats.isSymbolicLink()) throw unusable('is a symbolic link; qrun uses only a real directory there');
  if (!stats.isDirectory()) throw unusable('is not a directory');
  const uid = process.getuid?.();
  if (uid !== undefined && stats.uid !== uid) {
    throw unusable(`belongs to user ${stats.uid}, not to qrun's user (${uid})`);
  }
  if ((stats.mode & 0o022) !== 0) {
    throw unusable('is writable by other users; only qrun’s user may write there (chmod 700)');
  }
  return realpathSync(fileDir);
}

/**
 * Resolves a client-given database file path against the organization's directory and refuses
 * anything that could open a file elsewhere: absolute paths, `..` segments and symbolic links
 * anywhere along the path (even one that points inside: the simple rule is the one that cannot be
 * got wrong). The file must already exist and be a regular file, so a typo cannot silently create a
 * new, empty database.
 *
 * Returns the absolute path to open. The configuration keeps the path as the client gave it, and
 * every open resolves and checks it again (see checkedAtOpen). Messages quote the path as given,
 * never the server's absolute path. `field` is the configuration field's name (`path`, or already
 * qualified as `configuration.path`).
 */
export function resolveUnderRoot(input: string, fileDir: string, field: string): string {
  const name = field.startsWith('configuration.') ? field : `configuration.${field}`;
  const refuse = (why: string) => badRequest('invalid_configuration', `${name} ${why}`, { field: name });
  const quoted = JSON.stringify(input);

  if (input.trim() === '' || input.includes('\0')) throw refuse('must be a file path.');
  if (isAbsolute(input)) {
    // Also what a connection saved by an older qrun (which stored absolute paths) gets at open.
    throw refuse(
      'must be a path relative to the organization’s file directory; absolute paths are refused (save the connection again with the file’s path inside that directory).',
    );
  }
  const segments = input.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) {
    throw refuse(
      `(${quoted}) must not contain "..": it names a file inside the organization’s file directory.`,
    );
  }
  if (segments.length === 0) throw refuse(`(${quoted}) must name a database file, not a directory.`);

  let current = organizationDir(fileDir);
  for (const [i, segment] of segments.entries()) {
    current = join(current, segment);
    let stats: Stats;
    try {
      stats = lstatSync(current);
    } catch (error) {
      const code = errorCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        throw refuse(`(${quoted}) names a file that does not exist in the organization’s file directory.`);
      }
      throw refuse(`(${quoted}) cannot be opened (${code}).`);
    }
    if (stats.isSymbolicLink()) {
      throw refuse(`(${quoted}) passes through a symbolic link, which qrun does not follow.`);
    }
    const last = i === segments.length - 1;
    if (!last && !stats.isDirectory()) {
      throw refuse(`(${quoted}) names a file that does not exist in the organization’s file directory.`);
    }
    if (last && !stats.isFile()) throw refuse(`(${quoted}) must name a database file, not a directory.`);
  }
  return current;
}

function errorCode(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'unknown error';
}

/** The configuration of a file engine (SQLite, DuckDB): the database file, and whether SQL may change it. */
export function fileConfigSchema(pathDescription: string) {
  return configSchema({
    path: field.string({ description: pathDescription }),
    read_only: field.boolean({
      description:
        'Open the database read-only (the default). Set to false to let SQL change the database and, in DuckDB, write files (COPY … TO, EXPORT DATABASE, ATTACH); writes stay inside the organization’s file directory.',
      default: true,
    }),
  });
}

/** A file engine's configuration as its engine sees it (`read_only` filled: also for connections saved before it existed). */
export type FileConfig = Static<ReturnType<typeof fileConfigSchema>>;
