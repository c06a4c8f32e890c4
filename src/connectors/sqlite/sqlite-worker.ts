/**
 * Entry of the process that runs one SQLite statement for the SQLite connector (sqlite-connector.ts).
 *
 * better-sqlite3 is synchronous, so the statement runs here, off the server's event loop. It is a
 * child process rather than a worker thread because a process can be killed mid-statement: a
 * worker thread's terminate() only takes effect once the native sqlite3_step() returns, which for a
 * heavy query can be minutes later, and better-sqlite3 exposes no sqlite3_interrupt().
 *
 * One statement at a time: it opens the file, runs the statement and streams rows on request (the
 * messages are in sqlite-session.ts). A statement read to its end closes its connection, and the process
 * may then be given the next statement of the same stored connection (sqlite-session.ts, warm sessions);
 * every other end kills the process. It exits when the parent disconnects. Its imports stay light
 * (types, values, errors): a SQLite query that finds no process waiting pays for its start-up.
 */
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { CellValue } from '../connector.js';
import { errorReply } from './sqlite-errors.js';
import type { ColumnsReply, FromWorker, StartRequest, ToWorker } from './sqlite-session.js';
import { sqliteCell, storageClass } from './sqlite-values.js';

/**
 * A watchdog thread. While a statement computes, this process's main thread sits inside
 * sqlite3_step() and cannot see its parent die (SIGKILL, the OOM killer): the 'disconnect' below only
 * runs once the step returns, maybe hours later. The thread has its own event loop, notices that the
 * process was re-parented, and kills the process and the statement with it. It adds about 10 ms to
 * the process's start-up (test/integration/orphaned-statements.test.ts checks the kill).
 */
const WATCHDOG = `
const { parent } = require('node:worker_threads').workerData;
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL');
}, 500);
`;
new Worker(WATCHDOG, { eval: true, workerData: { parent: process.ppid } }).unref();

let db: Database.Database | undefined;
let rows: IterableIterator<unknown[]> | undefined;
let batchSize = 1000;

function send(message: FromWorker): void {
  process.send?.(message);
}

function fail(error: unknown): void {
  send(errorReply(error));
  rows = undefined;
}

/**
 * Fills every ATTACH slot with an empty in-memory database, so the user's statement cannot ATTACH
 * (or VACUUM INTO, which attaches internally) any other file, its own organization's or another's:
 * better-sqlite3 offers neither an authorizer nor sqlite3_limit(). Each statement has a connection of
 * its own, guarded afresh, so a statement that DETACHes a slot ends before anything could use it.
 *
 * Extensions need nothing here: better-sqlite3 enables only the C API's sqlite3_load_extension(),
 * which this process never calls, so the SQL function load_extension() stays "not authorized".
 */
function fillAttachSlots(database: Database.Database): void {
  for (let i = 0; i < 1000; i++) {
    try {
      database.exec(`ATTACH DATABASE ':memory:' AS qrun_guard_${i}`);
    } catch {
      return;
    }
  }
}

/** The statement is over: its connection goes, so nothing of it is left for the process's next statement. */
function closeDatabase(): void {
  rows?.return?.(); // an open iterator keeps the connection busy, and close() would refuse
  rows = undefined;
  db?.close();
  db = undefined;
}

function readBatch(): { rows: CellValue[][]; done: boolean } {
  const batch: CellValue[][] = [];
  if (!rows) return { rows: batch, done: true };
  while (batch.length < batchSize) {
    const next = rows.next();
    if (next.done) {
      closeDatabase();
      return { rows: batch, done: true };
    }
    batch.push(next.value.map(sqliteCell));
  }
  return { rows: batch, done: false };
}

function start(request: StartRequest): void {
  // Already a whole number of at least 1 (support.ts, batchRows).
  batchSize = request.batchSize;
  closeDatabase();
  db = new Database(request.path, { fileMustExist: true, readonly: request.readOnly });
  fillAttachSlots(db);
  const statement = db.prepare(request.sql);
  if (!statement.reader) {
    statement.run(...request.parameters);
    closeDatabase();
    send({ type: 'columns', columns: [], rows: [], done: true });
    return;
  }
  const declared = statement.columns();
  rows = statement
    .raw(true)
    .safeIntegers(true)
    .iterate(...request.parameters) as IterableIterator<unknown[]>;
  const first = readBatch();
  const firstRow = first.rows[0];
  const reply: ColumnsReply = {
    type: 'columns',
    // Declared type when the column has one (uppercased), else the first row's storage class.
    columns: declared.map((c, i) => ({
      name: c.name,
      type: c.type ? c.type.toUpperCase() : storageClass(firstRow?.[i]),
    })),
    ...first,
  };
  send(reply);
}

process.on('message', (message: ToWorker) => {
  try {
    if (message.type === 'start') start(message);
    else send({ type: 'batch', ...readBatch() });
  } catch (error) {
    fail(error);
  }
});

// Started and listening: a spare (sqlite-processes.ts) is now ready to take a statement.
send({ type: 'ready' });

// The parent disconnects when it is done with us (or has exited): close the file and leave.
process.on('disconnect', () => {
  try {
    closeDatabase();
  } finally {
    process.exit(0);
  }
});
