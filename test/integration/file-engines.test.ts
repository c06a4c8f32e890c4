/**
 * SQLite- and DuckDB-specific behaviour beyond the shared connector suite: the SQLite worker really
 * runs off the event loop and really dies on cancel, SQL cannot reach files outside the file root,
 * and the value tables of both fixtures.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DatabaseError,
  QueryAbortedError,
  type CellValue,
  type ConnectorContext,
  type ParameterValue,
  type QueryStream,
} from '../../src/connectors/connector.js';
import { childProcesses } from '../helpers/cpu.js';
import { duckdbFixture } from '../helpers/duckdb-fixture.js';
import type { EngineFixture } from '../helpers/engine-fixture.js';
import { busySqliteWorkers, sqliteFixture } from '../helpers/sqlite-fixture.js';
import { waitUntil } from '../helpers/wait.js';

const neverAborted = () => new AbortController().signal;

async function collect(stream: QueryStream): Promise<CellValue[][][]> {
  const batches: CellValue[][][] = [];
  for await (const batch of stream.rows) batches.push(batch);
  return batches;
}

/** Child processes of this process, to see whether a SQLite worker is still alive. */
const childPids = (): number[] => childProcesses().map((child) => child.pid);

/** Settles to the error, or to undefined. */
const settle = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  );

function engine(fixture: EngineFixture) {
  let config: Record<string, unknown>;
  let context: ConnectorContext;
  const run = (sql: string, parameters: ParameterValue[] = [], batchSize = 1000, signal = neverAborted()) =>
    fixture.connector.stream(config, sql, parameters, { signal, batchSize }, context);
  return {
    run,
    async rows(sql: string, parameters: ParameterValue[] = []): Promise<CellValue[][]> {
      return (await collect(await run(sql, parameters))).flat();
    },
    async setup() {
      ({ config, context } = await fixture.setup());
    },
    get context() {
      return context;
    },
    get config() {
      return config;
    },
  };
}

describe.each([sqliteFixture, duckdbFixture])('$type value table', (fixture) => {
  const db = engine(fixture);
  beforeAll(() => db.setup());
  afterAll(() => fixture.teardown());

  it.each(fixture.valueCases)('$name', async (valueCase) => {
    const stream = await db.run(valueCase.sql);
    const rows = (await collect(stream)).flat();
    expect(rows).toEqual([valueCase.expected]);
    if (valueCase.types) expect(stream.columns.map((c) => c.type)).toEqual(valueCase.types);
    for (const cell of rows[0] ?? []) {
      // Binary is a plain Uint8Array (not a Buffer), so every consumer sees one binary type.
      if (cell instanceof Uint8Array) expect(cell.constructor).toBe(Uint8Array);
    }
  });
});

describe.each([sqliteFixture, duckdbFixture])('$type basics', (fixture) => {
  const db = engine(fixture);
  beforeAll(() => db.setup());
  afterAll(() => fixture.teardown());

  it('test() succeeds on the fixture database', async () => {
    await expect(fixture.connector.test(db.config, db.context)).resolves.toBeUndefined();
  });

  it('test() fails with a DatabaseError on a file that is not a database', async () => {
    await writeFile(
      join(db.context.fileDir, 'junk.db'),
      'this is not a database file, just some text'.repeat(100),
    );
    await expect(fixture.connector.test({ path: 'junk.db' }, db.context)).rejects.toBeInstanceOf(
      DatabaseError,
    );
  });

  it('streams a series in batches of batchSize, in order', async () => {
    const stream = await db.run(fixture.sql.series(25_000), [], 1000);
    expect(stream.columns.map((c) => c.name)).toEqual(['n']);
    const batches = await collect(stream);
    expect(batches.length).toBe(25);
    expect(batches.every((b) => b.length === 1000)).toBe(true);
    expect(batches.flat().map((r) => Number(r[0]))).toEqual(Array.from({ length: 25_000 }, (_, i) => i + 1));
  });

  it('binds positional parameters', async () => {
    const rows = await db.rows(fixture.sql.twoParameters, ['x', 2.5]);
    expect(rows).toEqual([['x', 2.5]]);
    const [[a, b]] = (await db.rows(fixture.sql.twoParameters, [42, null])) as [CellValue[]];
    expect(Number(a)).toBe(42);
    expect(b).toBeNull();
  });

  it('runs statements without a result set: no columns, no rows', async () => {
    const create = await db.run('CREATE TABLE items (id INTEGER, name VARCHAR)');
    expect(create.columns).toEqual([]);
    expect(await collect(create)).toEqual([]);
    const insert = await db.run('INSERT INTO items VALUES (?, ?), (?, ?)', [1, 'one', 2, 'two']);
    expect(insert.columns).toEqual([]);
    expect(await collect(insert)).toEqual([]);
    expect(
      (await db.rows('SELECT id, name FROM items ORDER BY id')).map((r) => [Number(r[0]), r[1]]),
    ).toEqual([
      [1, 'one'],
      [2, 'two'],
    ]);
  });

  it('reports syntax errors and missing tables as DatabaseError with the database’s message', async () => {
    await expect(db.run('SELEC 1')).rejects.toThrow(DatabaseError);
    await expect(db.run('SELEC 1')).rejects.toThrow(/syntax error/i);
    await expect(db.run('SELECT * FROM no_such_table')).rejects.toThrow(/no_such_table/);
  });

  it('refuses more than one statement', async () => {
    await expect(db.run('SELECT 1; SELECT 2')).rejects.toBeInstanceOf(DatabaseError);
  });

  it('stops cleanly when the consumer stops early', async () => {
    const stream = await db.run(fixture.sql.series(100_000), [], 100);
    for await (const batch of stream.rows) {
      expect(batch.length).toBe(100);
      break;
    }
    // The database is still usable (nothing left locked).
    expect((await db.rows('SELECT 1 AS one')).map((r) => Number(r[0]))).toEqual([1]);
  });

  it('cancels a slow statement on abort and throws QueryAbortedError', async () => {
    const controller = new AbortController();
    // Ten minutes of work: only an abort that stops the statement ends this within the test's time.
    const attempt = (async () => collect(await db.run(fixture.sql.slow(600), [], 1000, controller.signal)))();
    const outcome = settle(attempt);
    await fixture.quiet?.();
    const cpu = fixture.engineCpuMs!.bind(fixture);
    const before = cpu();
    await waitUntil('the engine to spend 200 ms of CPU on the statement', () => cpu() - before >= 200);
    controller.abort(new Error('test cancel'));
    const error = await outcome;
    expect(error).toBeInstanceOf(QueryAbortedError);
    expect((error as QueryAbortedError).reason).toEqual(new Error('test cancel'));
    // And the engine is usable right after.
    expect((await db.rows('SELECT 2 AS two')).map((r) => Number(r[0]))).toEqual([2]);
  });

  it('throws QueryAbortedError at once for an already aborted signal', async () => {
    const controller = new AbortController();
    controller.abort('gone');
    await expect(db.run('SELECT 1', [], 10, controller.signal)).rejects.toBeInstanceOf(QueryAbortedError);
  });

  it('refuses at open an absolute path stored by an older qrun, saying to save the connection again', async () => {
    const stored = { ...db.config, path: join(db.context.fileDir, String(db.config.path)) };
    const attempt = fixture.connector.stream(
      stored,
      'SELECT 1',
      [],
      { signal: neverAborted(), batchSize: 1 },
      db.context,
    );
    await expect(attempt).rejects.toBeInstanceOf(DatabaseError);
    await expect(attempt).rejects.toThrow(/absolute paths are refused \(save the connection again/);
  });

  it('refuses a configuration path outside the root at query time', async () => {
    await expect(
      fixture.connector.stream(
        { path: '../x' },
        'SELECT 1',
        [],
        { signal: neverAborted(), batchSize: 1 },
        db.context,
      ),
    ).rejects.toBeInstanceOf(DatabaseError);
  });
});

describe('sqlite worker process', () => {
  const db = engine(sqliteFixture);
  beforeAll(() => db.setup());
  afterAll(() => sqliteFixture.teardown());

  it('keeps the event loop responsive while a heavy query runs', async () => {
    const controller = new AbortController();
    // Ten minutes of one sqlite3_step(): were it on this thread, not one timer could fire until it ended.
    const outcome = settle(
      (async () => collect(await db.run(sqliteFixture.sql.slow(600), [], 1000, controller.signal)))(),
    );
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    try {
      await sqliteFixture.quiet!();
      const cpu = sqliteFixture.engineCpuMs!.bind(sqliteFixture);
      const before = cpu();
      // The worker computes (its CPU time grows) while this thread keeps running timers.
      await waitUntil(
        'the worker to spend 300 ms of CPU while this event loop turns 10 times',
        () => cpu() - before >= 300 && ticks >= 10,
      );
    } finally {
      clearInterval(timer);
      controller.abort('done');
    }
    // Still running when aborted: it ends by the abort, not with rows.
    expect(await outcome).toBeInstanceOf(QueryAbortedError);
  });

  it('kills the worker process on abort, mid-statement', async () => {
    const before = busySqliteWorkers().map((child) => child.pid);
    const controller = new AbortController();
    const pending = db.run(sqliteFixture.sql.slow(600), [], 1000, controller.signal);
    // The statement's process: a spare it took, or one started for it.
    const worker = await waitUntil('the worker process', () =>
      busySqliteWorkers().find((child) => !before.includes(child.pid)),
    );
    await sqliteFixture.quiet!();
    const startedWith = childProcesses().find((child) => child.pid === worker.pid)?.cpuMs ?? 0;
    // Mid-statement: the worker has computed 300 ms since it started the statement.
    await waitUntil(
      'the worker to spend 300 ms of CPU',
      () => (childProcesses().find((child) => child.pid === worker.pid)?.cpuMs ?? 0) >= startedWith + 300,
    );
    controller.abort('stop');
    await expect(pending).rejects.toBeInstanceOf(QueryAbortedError);
    await waitUntil('the worker process to end', () => !childPids().includes(worker.pid));
  });

  it('ends the worker when the consumer stops early and after a normal end', async () => {
    // Spares come and go beside it; the processes that ran a statement are what must end.
    const before = busySqliteWorkers().length;
    const stream = await db.run(sqliteFixture.sql.series(50_000), [], 10);
    for await (const _batch of stream.rows) break;
    await waitUntil('the worker to end after an early stop', () => busySqliteWorkers().length <= before);
    await db.rows('SELECT 1');
    await waitUntil('the worker to end after a normal end', () => busySqliteWorkers().length <= before);
  });

  it('keeps SQL away from files outside the root (ATTACH, VACUUM INTO)', async () => {
    const target = join(db.context.fileDir, '..', `qrun-escape-${process.pid}.sqlite`);
    await expect(db.run(`ATTACH DATABASE '${target}' AS esc`)).rejects.toThrow(/too many attached/);
    await expect(db.run(`VACUUM INTO '${target}'`)).rejects.toThrow(/too many attached/);
  });

  it('reports SQLite error codes', async () => {
    await expect(db.run('SELECT * FROM nope')).rejects.toMatchObject({
      name: 'DatabaseError',
      code: 'SQLITE_ERROR',
      message: 'no such table: nope',
    });
  });
});

describe('duckdb specifics', () => {
  const db = engine(duckdbFixture);
  beforeAll(() => db.setup());
  afterAll(() => duckdbFixture.teardown());

  it('reads files under the root but nothing outside it', async () => {
    await writeFile(join(db.context.fileDir, 'data.csv'), 'x,y\n1,a\n2,b\n');
    const inside = await db.rows(
      `SELECT x, y FROM read_csv('${join(db.context.fileDir, 'data.csv')}') ORDER BY x`,
    );
    expect(inside).toEqual([
      [1n, 'a'],
      [2n, 'b'],
    ]);
    await expect(db.run("SELECT * FROM read_csv('/etc/passwd')")).rejects.toThrow(/Permission Error/);
    await expect(db.run("ATTACH '/tmp/qrun-escape.duckdb' AS e")).rejects.toThrow(/Permission Error/);
    await expect(db.run('SET enable_external_access = true')).rejects.toThrow(/locked/);
  });

  it('shares one instance between concurrent streams on the same file', async () => {
    await db.rows('CREATE TABLE shared_t AS SELECT range AS v FROM range(10)');
    const streams = await Promise.all([1, 2, 3].map(() => db.run('SELECT sum(v) AS s FROM shared_t')));
    const results = await Promise.all(streams.map(async (s) => (await collect(s)).flat()));
    expect(results).toEqual([[[45n]], [[45n]], [[45n]]]);
  });

  it('opens a file read-only or read-write, never both at once: the other mode waits its turn', async () => {
    const readOnly = { ...db.config, read_only: true };
    const open = (config: Record<string, unknown>, sql: string, signal = neverAborted()) =>
      duckdbFixture.connector.stream(config, sql, [], { signal, batchSize: 10 }, db.context);
    // Not yet drained, so its read-only instance stays open.
    const held = await open(readOnly, 'SELECT range AS v FROM range(100)');
    const events: string[] = [];
    const write = (async () => collect(await db.run('CREATE TABLE after_ro AS SELECT 1 AS x')))().then(() =>
      events.push('written'),
    );
    // A waiting stream can still be stopped.
    const controller = new AbortController();
    const stopped = open(db.config, 'SELECT 1', controller.signal);
    // Sentinel: a whole stream of its own (open an instance, run, close), started after the write. Had
    // the write not waited for the read-only instance, it would have finished first.
    await collect(await open({ path: ':memory:' }, 'SELECT 1 AS sentinel'));
    events.push('sentinel');
    controller.abort('stop');
    // Still waiting when aborted (it would have run `SELECT 1` otherwise).
    await expect(stopped).rejects.toBeInstanceOf(QueryAbortedError);
    expect((await collect(held)).flat()).toHaveLength(100);
    events.push('read-only drained');
    await write;
    expect(events).toEqual(['sentinel', 'read-only drained', 'written']);
    await expect(open(readOnly, 'INSERT INTO after_ro VALUES (2)')).rejects.toThrow(/read-only/);
    expect((await collect(await open(readOnly, 'SELECT x FROM after_ro'))).flat()).toEqual([[1]]);
  });

  it('opens :memory: as a fresh database each time', async () => {
    const memory = { path: ':memory:' };
    const run = (sql: string) =>
      duckdbFixture.connector.stream(memory, sql, [], { signal: neverAborted(), batchSize: 10 }, db.context);
    await collect(await run('CREATE TABLE m (x INTEGER)'));
    await expect(run('SELECT * FROM m')).rejects.toThrow(/does not exist/);
    expect((await collect(await run('SELECT 40 + 2 AS answer'))).flat()).toEqual([[42]]);
  });

  it('binds whole numbers as integers and others as doubles', async () => {
    const rows = await db.rows('SELECT ? AS a, ? AS b, ? AS c, ? AS d', [1, 2 ** 40, 0.5, 1e300]);
    expect(rows).toEqual([[1, 2n ** 40n, 0.5, 1e300]]);
  });
});
