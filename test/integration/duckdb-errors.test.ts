/**
 * DuckDB errors must reach the caller with DuckDB's own message, wherever in the result they
 * happen: a streamed DuckDB result that fails mid-way just ends (fetchChunk() returns an empty
 * chunk, as at the real end), so the connector runs each statement to completion first. These
 * tests hold it to that, and to the costs of doing so staying bounded: the run can still be
 * canceled, and its spill directory lives under os.tmpdir() only as long as its instance.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DatabaseError,
  QueryAbortedError,
  type CellValue,
  type ColumnInfo,
  type ConnectorContext,
} from '../../src/connectors/connector.js';
import { duckdbConnector } from '../../src/connectors/duckdb/duckdb-connector.js';
import { ownCpuMs } from '../helpers/cpu.js';
import { duckdbFixture } from '../helpers/duckdb-fixture.js';
import { REPO_ROOT } from '../helpers/process.js';
import { waitUntil } from '../helpers/wait.js';

/** The test engineer's repro: the error comes after DuckDB has already streamed about 165,000 rows. */
const FAILS_LATE =
  "SELECT range AS n, repeat('x', 1000) AS pad, CASE WHEN range = 200000 THEN error('boom') ELSE range END FROM range(250000)";

/** About 10^11 hashed pairs: ten minutes or more on two cores, with few result rows (about a million). */
const SLOW_TO_MATERIALIZE =
  'SELECT a.range AS a, b.range AS b FROM range(1000000) a, range(100000) b WHERE hash(a.range, b.range) % 100000 = 0';

interface Outcome {
  columns: ColumnInfo[];
  rows: CellValue[][];
  error: unknown;
}

describe('duckdb errors and materialization', () => {
  let privateTmp: string;
  let savedTmp: string | undefined;
  let config: Record<string, unknown>;
  let context: ConnectorContext;

  /** Runs `sql` and reads everything, recording rows seen before any error instead of throwing. */
  async function run(
    sql: string,
    options: { path?: string; signal?: AbortSignal; batchSize?: number } = {},
  ): Promise<Outcome> {
    const outcome: Outcome = { columns: [], rows: [], error: undefined };
    try {
      const stream = await duckdbConnector.stream(
        options.path ? { path: options.path } : config,
        sql,
        [],
        { signal: options.signal ?? new AbortController().signal, batchSize: options.batchSize ?? 5000 },
        context,
      );
      outcome.columns = stream.columns;
      for await (const batch of stream.rows) outcome.rows.push(...batch);
    } catch (error) {
      outcome.error = error;
    }
    return outcome;
  }

  const spillDirs = async () =>
    (await readdir(privateTmp)).filter((name) => name.startsWith('qrun-duckdb-spill-'));

  beforeAll(async () => {
    // os.tmpdir() follows TMPDIR, so this file's DuckDB spill directories can be counted.
    privateTmp = await mkdtemp(join(tmpdir(), 'qrun-duckdb-errors-'));
    savedTmp = process.env['TMPDIR'];
    process.env['TMPDIR'] = privateTmp;
    ({ config, context } = await duckdbFixture.setup());
  });

  afterAll(async () => {
    await duckdbFixture.teardown();
    if (savedTmp === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = savedTmp;
    await rm(privateTmp, { recursive: true, force: true });
  });

  it.each([
    ['a database file', undefined],
    [':memory:', ':memory:'],
  ])(
    'an error late in a large result is a DatabaseError with its message, never a quiet end (%s)',
    async (_, path) => {
      const { rows, error } = await run(FAILS_LATE, { path });
      expect(error).toBeInstanceOf(DatabaseError);
      expect((error as DatabaseError).message).toMatch(/boom/);
      // Whatever was delivered before the error is a prefix of the result, never past the failing row.
      expect(rows.length).toBeLessThan(200_000);
      rows.forEach((row, i) => expect(row[0]).toBe(BigInt(i)));
    },
  );

  it('a large result that succeeds arrives complete and in order', async () => {
    const { columns, rows, error } = await run(
      "SELECT range AS n, 'row ' || range AS label FROM range(300000) ORDER BY range DESC",
    );
    expect(error).toBeUndefined();
    expect(columns).toEqual([
      { name: 'n', type: 'BIGINT' },
      { name: 'label', type: 'VARCHAR' },
    ]);
    expect(rows.length).toBe(300_000);
    expect(rows.every((row, i) => row[0] === BigInt(299_999 - i) && row[1] === `row ${299_999 - i}`)).toBe(
      true,
    );
  });

  it('a syntax error carries DuckDB’s own message, without the driver’s prefix', async () => {
    const { error } = await run('SELEC 1 FROMM nowhere');
    expect(error).toBeInstanceOf(DatabaseError);
    const message = (error as DatabaseError).message;
    expect(message).toMatch(/^Parser Error: syntax error at or near "SELEC"/);
    expect(message).not.toMatch(/Failed to extract statements/);
  });

  it('an empty query is a DatabaseError saying so', async () => {
    const { error } = await run('  -- nothing here\n');
    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as DatabaseError).message).toBe('The query contains no SQL statement.');
  });

  it('a run-time error points at the user’s own SQL, by its own line number', async () => {
    const { error } = await run(
      "SELECT 1 AS one\nUNION ALL\nSELECT CAST(x AS INTEGER) FROM (VALUES ('a')) AS t(x)",
    );
    expect(error).toBeInstanceOf(DatabaseError);
    const message = (error as DatabaseError).message;
    expect(message).toMatch(/^Conversion Error: Could not convert string 'a' to INT32/);
    expect(message).toMatch(/\n\nLINE 3: SELECT CAST\(x AS INTEGER\)/);
    expect(message).not.toMatch(/CREATE|qrun_result/);
  });

  it('keeps the query’s own column names, duplicates included', async () => {
    const { columns, rows } = await run('SELECT 1 AS a, 2 AS a, 3 AS "A"');
    expect(columns.map((c) => c.name)).toEqual(['a', 'a', 'A']);
    expect(rows).toEqual([[1, 2, 3]]);
  });

  it('statements that cannot be spooled into a table still return their rows', async () => {
    const described = await run('DESCRIBE SELECT 42 AS answer');
    expect(described.error).toBeUndefined();
    expect(described.rows.map((row) => row.slice(0, 2))).toEqual([['answer', 'INTEGER']]);
    const explained = await run('EXPLAIN SELECT 42');
    expect(explained.error).toBeUndefined();
    expect(explained.rows.length).toBeGreaterThan(0);
  });

  it('an abort stops a long materialization, and the instance’s spill directory goes', async () => {
    const controller = new AbortController();
    const reason = new Error('test cancel');
    let streaming = false;
    const outcome = run(SLOW_TO_MATERIALIZE, { path: ':memory:', signal: controller.signal }).then((o) => {
      streaming = o.columns.length > 0;
      return o;
    });
    // The private :memory: instance has its own spill directory under os.tmpdir() while it runs.
    await waitUntil('the spill directory', async () => (await spillDirs()).length === 1);
    // DuckDB is working on it (this process's threads burn CPU; the test itself only waits)...
    const before = ownCpuMs();
    await waitUntil('DuckDB to spend a second of CPU on the statement', () => ownCpuMs() - before >= 1000);
    expect(streaming).toBe(false); // ...and still running the statement, no row delivered yet

    // Minutes of work left: only an abort that interrupts DuckDB ends it within the test's time.
    controller.abort(reason);
    const { error } = await outcome;
    expect(error).toBeInstanceOf(QueryAbortedError);
    expect((error as QueryAbortedError).reason).toBe(reason);
    await waitUntil('the spill directory to be removed', async () => (await spillDirs()).length === 0);
  });

  it('the shared file instance removes its spill directory when its last stream ends', async () => {
    const { rows } = await run('SELECT 1 AS x');
    expect(rows).toEqual([[1]]);
    await waitUntil('no spill directory', async () => (await spillDirs()).length === 0);
  });

  it('a CALL returns its rows, parameters bound, under its own column names', async () => {
    const called = await run('-- a comment first\nCALL range(3)');
    expect(called.error).toBeUndefined();
    expect(called.columns).toEqual([{ name: 'range', type: 'BIGINT' }]);
    expect(called.rows).toEqual([[0n], [1n], [2n]]);
    const stream = await duckdbConnector.stream(
      config,
      'CALL range(?)',
      [2],
      { signal: new AbortController().signal, batchSize: 10 },
      context,
    );
    const rows: CellValue[][] = [];
    for await (const batch of stream.rows) rows.push(...batch);
    expect(rows).toEqual([[0n], [1n]]);
  });

  it('a CALL that fails late is a DatabaseError with its message, never a short result', async () => {
    const inner = FAILS_LATE.replaceAll("'", "''");
    const { rows, error } = await run(`CALL query('${inner}')`, { path: ':memory:' });
    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as DatabaseError).message).toMatch(/boom/);
    expect(rows.length).toBeLessThan(200_000);
  });

  it('a PRAGMA or SUMMARIZE that fails is a DatabaseError with its message', async () => {
    const pragma = await run("PRAGMA table_info('no_such_table')");
    expect(pragma.error).toBeInstanceOf(DatabaseError);
    expect((pragma.error as DatabaseError).message).toMatch(/no_such_table/);
    const summarized = await run(
      "SUMMARIZE SELECT CASE WHEN range = 200000 THEN error('boom') END FROM range(250000)",
    );
    expect(summarized.error).toBeInstanceOf(DatabaseError);
    expect((summarized.error as DatabaseError).message).toMatch(/boom/);
  });

  /**
   * DuckDB materializes a CALL's whole result in plain memory, outside memory_limit, even when asked to
   * stream it (measured: 2.4 GB of RSS for a 1.2 GB result); the connector spools it as `FROM …`
   * instead. Child processes read a 200 MB and an 800 MB CALL result through the connector with a 64 MiB
   * memory limit and report their peak RSS: it may not grow with the result (a few hundred MiB of
   * it are Node, DuckDB's 64 MiB and chunks the garbage collector has not yet freed).
   */
  it('a huge CALL result is held to the memory limit, not materialized', async () => {
    const script = join(privateTmp, 'call-rss.mjs');
    await writeFile(
      script,
      `
      import { mkdtempSync } from 'node:fs';
      import { tmpdir } from 'node:os';
      import { join } from 'node:path';
      const { duckdbConnector } = await import(${JSON.stringify(join(REPO_ROOT, 'src/connectors/duckdb/duckdb-connector.ts'))});
      const { EgressPolicy } = await import(${JSON.stringify(join(REPO_ROOT, 'src/net/egress-policy.ts'))});
      const context = {
        fileDir: mkdtempSync(join(tmpdir(), 'qrun-call-rss-')),
        egress: new EgressPolicy({ allow: [], deny: [] }),
        duckdb: { threads: 2, memoryBytes: 64 * 1024 * 1024, maxTempBytes: 10 * 1024 ** 3 },
      };
      const stream = await duckdbConnector.stream(
        { path: ':memory:' },
        "CALL repeat_row(repeat('x', 1000), num_rows := " + Number(process.argv[2]) + ")",
        [],
        { signal: new AbortController().signal, batchSize: 1000 },
        context,
      );
      let bytes = 0;
      for await (const batch of stream.rows) for (const row of batch) bytes += row[0].length;
      console.log(JSON.stringify({ bytes, maxRss: process.resourceUsage().maxRSS * 1024 }));
      `,
    );
    const measure = (rows: number) =>
      new Promise<{ bytes: number; maxRss: number }>((resolve, reject) =>
        execFile(
          process.execPath,
          ['--import', 'tsx', script, String(rows)],
          { cwd: REPO_ROOT, env: { ...process.env, TMPDIR: privateTmp }, maxBuffer: 1 << 20 },
          (error, stdout, stderr) =>
            error ? reject(new Error(stderr || error.message)) : resolve(JSON.parse(stdout)),
        ),
      );
    const small = await measure(200_000);
    const large = await measure(800_000);
    expect([small.bytes, large.bytes]).toEqual([200_000_000, 800_000_000]);
    const MiB = 2 ** 20;
    const peaks = `peak RSS ${Math.round(small.maxRss / MiB)} MiB, then ${Math.round(large.maxRss / MiB)} MiB`;
    // 600 MB more result: materialized, the peak would grow by more than that.
    expect(large.maxRss - small.maxRss, peaks).toBeLessThan(200 * MiB);
    expect(large.maxRss, peaks).toBeLessThan(large.bytes);
  });
});
