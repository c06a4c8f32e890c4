/**
 * SQLite: each statement runs in a child process of its own (better-sqlite3 is synchronous, and only
 * a process can be stopped inside sqlite3_step()), on a file in the organization's directory.
 *
 * - sqlite-connector.ts  the Connector: configuration schema, capabilities, test, stream entry
 * - sqlite-session.ts    the worker process (messages, SIGKILL on abort) and the file it opens
 * - sqlite-processes.ts  worker processes started ahead of need, one per statement, never reused
 * - sqlite-stream.ts     one statement → batches of rows, pulled one request at a time
 * - sqlite-values.ts     SQLite values → CellValues, parameters → what better-sqlite3 binds
 * - sqlite-errors.ts     SQLite and worker-process errors → DatabaseError
 * - sqlite-worker.ts     the child process's entry (runs in another process, so a file of its own)
 */
import type { Static } from 'typebox';
import { defineConnector } from '../config-schema.js';
import type { Engine } from '../connector.js';
import { fileConfigSchema } from '../file-path.js';
import { testByQuery } from '../support.js';
import { TEST_TIMED_OUT } from './sqlite-errors.js';
import { databasePath } from './sqlite-session.js';
import { streamSqlite } from './sqlite-stream.js';

/** How long `test()` may take (opening a locked file waits on SQLite's busy timeout). */
const TEST_TIMEOUT_MS = 30_000;

export const sqliteConfigSchema = fileConfigSchema(
  'Path of an existing SQLite database file, relative to the organization’s file directory on the server ($QRUN_FILE_ROOT/<organization id>); absolute paths, `..` and symbolic links are refused.',
);

export type SqliteConfig = Static<typeof sqliteConfigSchema>;

const sqlite: Engine<SqliteConfig> = {
  type: 'sqlite',
  name: 'SQLite',
  capabilities: { placeholders: 'question', fileBased: true },

  checkConfig(config, context) {
    // Refuses a path that does not lead to a file in the organization's directory. The path is kept
    // as the client gave it and resolved again at every open.
    databasePath(config, context);
  },

  // Reading the schema (not just `SELECT 1`) proves the file really is an SQLite database.
  test: (config, context) =>
    testByQuery(
      (options) => streamSqlite(config, 'SELECT count(*) FROM sqlite_schema', [], options, context),
      TEST_TIMEOUT_MS,
      TEST_TIMED_OUT,
    ),

  stream: streamSqlite,
};

export const sqliteConnector = defineConnector(sqliteConfigSchema, sqlite);
