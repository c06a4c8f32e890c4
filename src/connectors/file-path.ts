import { existsSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { badRequest, isAppError } from '../core/errors.js';
import { DatabaseError } from './connector.js';

/**
 * Resolves a user-given database file path against the operator's file root and refuses anything
 * that would open a file outside it: `..` segments, absolute paths elsewhere, and symlinks (in the
 * file itself or any parent directory) that point outside. The file must already exist and be a
 * regular file, so a typo cannot silently create a new, empty database.
 *
 * `field` is the configuration field's name (`path`, or already qualified as `configuration.path`).
 * Returns the real, absolute path of the file (symlinks resolved): that is what gets opened, so a
 * symlink swapped later cannot redirect an already validated configuration's reads elsewhere.
 */
export function resolveUnderRoot(input: string, fileRoot: string, field: string): string {
  const name = field.startsWith('configuration.') ? field : `configuration.${field}`;
  const refuse = (why: string) => badRequest('invalid_configuration', `${name} ${why}`, { field: name });
  const outside = () => refuse('must name a file under the server’s file root.');
  const missing = () => refuse(`names a file that does not exist under the server’s file root (${input}).`);

  if (input.trim() === '' || input.includes('\0')) throw refuse('must be a file path.');
  let root: string;
  try {
    root = realpathSync(fileRoot);
  } catch {
    // The app creates the root at start-up; if it is gone, no file can be under it.
    throw refuse('cannot be opened: the server’s file root does not exist.');
  }

  const candidate = resolve(root, input);
  // Lexical check first, so `../x` is refused whether or not x exists (and without revealing which).
  if (!isInside(root, candidate)) throw outside();

  if (!existsSync(candidate)) {
    // Missing file or dangling symlink: still say "outside" when the parent really lies outside.
    let parent: string;
    try {
      parent = realpathSync(dirname(candidate));
    } catch {
      throw missing();
    }
    if (!isInside(root, resolve(parent, basename(candidate)))) throw outside();
    throw missing();
  }
  const real = realpathSync(candidate);
  if (!isInside(root, real)) throw outside();
  if (!statSync(real).isFile()) throw refuse('must name a database file, not a directory.');
  return real;
}

/** True when `path` is `root` itself or below it (both absolute and normalized). */
function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (rel !== '..' && !rel.startsWith('..' + sep) && !isAbsolute(rel));
}

/** The `path` field of a file engine's configuration (present after the generic field validation). */
export function configuredPath(config: Record<string, unknown>): string {
  if (typeof config.path !== 'string') {
    throw badRequest('invalid_configuration', 'configuration.path is required.', {
      field: 'configuration.path',
    });
  }
  return config.path;
}

/**
 * Checks a path again when a query opens it (the file, or a symlink, may have changed since the connection
 * was saved). A refusal then fails the query with a DatabaseError instead of answering a 400.
 */
export function checkedAtOpen(resolvePath: () => string): string {
  try {
    return resolvePath();
  } catch (error) {
    if (isAppError(error)) throw new DatabaseError(error.message, error.key);
    throw error;
  }
}
