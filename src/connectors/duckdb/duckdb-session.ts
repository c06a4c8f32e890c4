import { realpathSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { DatabaseError, type ConnectorContext, type DuckDBLimits } from '../connector.js';
import { organizationDir, resolveUnderRoot } from '../file-path.js';
import { raceAbort, throwIfAborted } from '../support.js';
import { isMemory, MEMORY, type DuckdbConfig } from './duckdb-connector.js';
import { duckdbError } from './duckdb-errors.js';

/**
 * DuckDB instances and sessions: one open instance per database file (shared by concurrent streams,
 * locked down to the organization's directory, with its own limits and spill directory), and one
 * connection per statement, which an abort interrupts.
 */

/**
 * Set when an instance opens. Extensions are never downloaded or loaded from disk at run time, and
 * no secret is ever written to disk (`~/.duckdb/stored_secrets`). File access is limited in
 * `lockDown`, because allowed_directories can only be set by SQL.
 */
const INSTANCE_OPTIONS: Record<string, string> = {
  autoinstall_known_extensions: 'false',
  autoload_known_extensions: 'false',
  allow_community_extensions: 'false',
  allow_persistent_secrets: 'false',
};

const GiB = 1024 ** 3;

/**
 * Per instance, unless the operator set others (QRUN_DUCKDB_*, passed in the ConnectorContext).
 * DuckDB's own defaults are a thread per core, 80% of the machine's memory and 90% of the temp
 * directory's disk, for every instance alike: a few concurrent queries could take the machine.
 * Within memoryBytes DuckDB's buffer manager holds spooled results and large sorts, joins and
 * aggregates; beyond it they spill to the instance's temp directory, up to maxTempBytes.
 */
const DEFAULT_LIMITS: DuckDBLimits = {
  threads: Math.min(2, availableParallelism()),
  memoryBytes: GiB,
  maxTempBytes: 10 * GiB,
};

/**
 * SQL may read or write files (read_csv, glob, COPY … TO, ATTACH) only in the organization's own
 * directory, and can change no setting afterwards (allowed_directories, enable_external_access, …).
 * DuckDB refuses paths with `..` and checks the rest by prefix (`dir` ends with a separator, so
 * `<dir>-other/` does not match); it follows a symlink inside the directory, which only someone with
 * a shell could plant there (docs/OPERATIONS.md). DuckDB always allows its own temp_directory (the
 * instance's private spill directory), so spilling keeps working without listing it.
 */
async function lockDown(connection: DuckDBConnection, dir: string): Promise<void> {
  const prefix = (dir.endsWith(sep) ? dir : dir + sep).replaceAll("'", "''");
  await connection.run(`SET allowed_directories = ['${prefix}']`);
  await connection.run('SET enable_external_access = false');
  await connection.run('SET lock_configuration = true');
}

/** What one stream opens: the database (`:memory:` or a file's absolute path), for whom, and how. */
export interface Target {
  path: string;
  /** The organization's directory (real path): the only one the session may reach. */
  dir: string;
  readOnly: boolean;
  limits: DuckDBLimits;
}

/** An open instance with its private spill directory; `close` removes both. */
interface OpenInstance {
  instance: DuckDBInstance;
  close(): void;
}

export interface Lease {
  instance: DuckDBInstance;
  release(): void;
}

interface SharedInstance {
  readOnly: boolean;
  opening: Promise<OpenInstance>;
  users: number;
  /** No new stream joins: the last user is gone, or a stream waits to open the file the other way. */
  draining: boolean;
  /** Resolves once the instance is closed and no longer in `shared`. */
  closed: Promise<void>;
  markClosed(): void;
}

/**
 * One open instance per database file, shared by concurrent streams and closed when the last one
 * ends: two instances on one file in one process could corrupt it, and an instance left to the
 * garbage collector (DuckDB's own instance cache) would keep the file locked for an unknown time.
 * Keyed by the organization's directory and the file's path, so an instance locked down for one
 * organization never serves another. A stream that needs the other access mode (read-only vs
 * read-write) waits until the open instance has closed. `:memory:` gets a fresh, private instance
 * per stream.
 */
const shared = new Map<string, SharedInstance>();

/**
 * Opens the target with its limits and a fresh temp directory under os.tmpdir() (not DuckDB's
 * default `<file>.tmp` beside the database, or `.tmp` in the working directory for `:memory:`),
 * all set before the configuration is locked, so SQL cannot raise them. A read-only file opens
 * with access_mode READ_ONLY; DuckDB cannot open `:memory:` that way (it is private to the stream
 * anyway).
 */
async function openInstance(target: Target): Promise<OpenInstance> {
  const spill = realpathSync(await mkdtemp(join(tmpdir(), 'qrun-duckdb-spill-')));
  const removeSpill = () => void rm(spill, { recursive: true, force: true }).catch(() => undefined);
  let instance: DuckDBInstance;
  try {
    instance = await DuckDBInstance.create(target.path, {
      ...INSTANCE_OPTIONS,
      ...(target.readOnly && target.path !== MEMORY ? { access_mode: 'READ_ONLY' } : {}),
      threads: String(target.limits.threads),
      memory_limit: `${target.limits.memoryBytes}B`,
      max_temp_directory_size: `${target.limits.maxTempBytes}B`,
      temp_directory: spill,
    });
  } catch (error) {
    removeSpill();
    throw error;
  }
  const close = () => {
    try {
      instance.closeSync();
    } finally {
      removeSpill();
    }
  };
  try {
    const connection = await instance.connect();
    try {
      await lockDown(connection, target.dir);
    } finally {
      connection.closeSync();
    }
  } catch (error) {
    close();
    throw error;
  }
  return { instance, close };
}

export async function lease(target: Target, signal: AbortSignal): Promise<Lease> {
  if (target.path === MEMORY) {
    const opened = await openInstance(target);
    return { instance: opened.instance, release: () => opened.close() };
  }
  const key = `${target.dir}\0${target.path}`;
  let entry = shared.get(key);
  while (entry && (entry.draining || entry.readOnly !== target.readOnly)) {
    // Let the open instance finish; streams that want it as it is wait too, so this one gets its turn.
    entry.draining = true;
    await raceAbort(entry.closed, signal);
    entry = shared.get(key);
  }
  if (!entry) {
    let markClosed = () => {};
    const closed = new Promise<void>((resolve) => (markClosed = resolve));
    entry = {
      readOnly: target.readOnly,
      opening: openInstance(target),
      users: 0,
      draining: false,
      closed,
      markClosed,
    };
    shared.set(key, entry);
  }
  const current = entry;
  current.users++;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    if (--current.users > 0) return;
    current.draining = true;
    current.opening
      .then((o) => o.close())
      .catch(() => undefined)
      .finally(() => {
        if (shared.get(key) === current) shared.delete(key);
        current.markClosed();
      });
  };
  try {
    return { instance: (await current.opening).instance, release };
  } catch (error) {
    // Opening failed: the last user's release forgets it, so the next stream tries again.
    current.draining = true;
    release();
    throw error;
  }
}

/**
 * One connection running one statement. Every driver call goes through `call`, so an abort can
 * interrupt the call in flight and the connection is closed only when no call is running.
 */
export class DuckSession {
  private busy = false;
  private closed = false;
  private connection: DuckDBConnection | undefined;

  constructor(
    private readonly lease: Lease,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  async call<T>(op: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    this.throwIfAborted();
    if (this.closed) throw new DatabaseError('The DuckDB connection is closed.');
    this.busy = true;
    try {
      this.connection ??= await this.lease.instance.connect();
      const value = await op(this.connection);
      this.throwIfAborted(); // an abort during the call wins over its result
      return value;
    } catch (error) {
      this.throwIfAborted();
      throw duckdbError(error);
    } finally {
      this.busy = false;
      if (this.signal.aborted) this.close();
    }
  }

  throwIfAborted(): void {
    throwIfAborted(this.signal);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.signal.removeEventListener('abort', this.onAbort);
    try {
      this.connection?.closeSync();
    } finally {
      this.lease.release();
    }
  }

  private readonly onAbort = (): void => {
    // Stops the running statement inside DuckDB; the call in flight then fails and closes us.
    this.connection?.interrupt();
    if (!this.busy) {
      this.close();
      return;
    }
    // DuckDB forgets an interrupt that comes before its statement has quite started (the call was
    // queued, the worker thread not yet running it), so repeat it until the call has returned.
    const again = setInterval(() => {
      if (this.busy && !this.closed) this.connection?.interrupt();
      else clearInterval(again);
    }, 200);
    again.unref();
  };
}

/**
 * The organization's directory, checked (and created on first use), and the database in it:
 * `:memory:` or the absolute path of a file given relative to that directory.
 */
export function resolveTarget(config: DuckdbConfig, context: ConnectorContext): Target {
  return {
    path: isMemory(config) ? MEMORY : resolveUnderRoot(config.path, context.fileDir, 'path'),
    dir: organizationDir(context.fileDir),
    readOnly: config.read_only,
    limits: context.duckdb ?? DEFAULT_LIMITS,
  };
}
