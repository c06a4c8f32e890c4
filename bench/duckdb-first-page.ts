/**
 * `npm run bench:duckdb-first-page`: why qrun spools DuckDB results instead of streaming them (issue 15,
 * item 7), measured on the raw driver (@duckdb/node-api), so the figures hold whatever qrun adds around it.
 *
 * 1. Correctness: a query that fails part-way is streamed with `stream()` + `fetchChunk()`; the printout shows
 *    whether the driver reports the error or ends as if the result were complete.
 * 2. Cost of spooling: for N rows, the time to the first chunk when streaming, and when spooling the way
 *    src/connectors/duckdb/duckdb-stream.ts does (`CREATE TEMP TABLE … AS <sql>`, then a streamed read of the
 *    table), and the time to the last row for both. Medians of --reps runs (default 5).
 *
 * Options: --rows N (default 5,000,000), --reps N.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
}

const ROWS = option('rows', 5_000_000);
const REPS = option('reps', 5);
const SQL = `select i, i * 2 as doubled, 'row ' || i::varchar as label, i / 7.0 as ratio from range(${ROWS}) t(i)`;

interface Timing {
  firstMs: number;
  lastMs: number;
  rows: number;
}

async function readAll(connection: DuckDBConnection, sql: string, started: number): Promise<Timing> {
  const result = await connection.stream(sql);
  let firstMs = -1;
  let rows = 0;
  for (;;) {
    const chunk = await result.fetchChunk();
    if (chunk === null || chunk.rowCount === 0) break;
    if (firstMs < 0) firstMs = performance.now() - started;
    // Touch every value, as qrun's encoder does.
    for (let c = 0; c < chunk.columnCount; c++) chunk.getColumnVector(c).getItem(0);
    rows += chunk.rowCount;
  }
  return { firstMs, lastMs: performance.now() - started, rows };
}

async function streamed(connection: DuckDBConnection): Promise<Timing> {
  return readAll(connection, SQL, performance.now());
}

async function spooled(connection: DuckDBConnection, n: number): Promise<Timing> {
  const started = performance.now();
  await connection.run(`create temp table spool_${n} as ${SQL}`);
  const timing = await readAll(connection, `select * from spool_${n}`, started);
  await connection.run(`drop table spool_${n}`);
  return timing;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
  const connection = await instance.connect();

  const failAt = Math.min(700_000, Math.max(ROWS - 1, 1));
  const failing = await connection.stream(
    `select case when i = ${failAt} then error('boom at ${failAt}') else i end as v from range(${failAt + 1000}) t(i)`,
  );
  let seen = 0;
  let outcome = 'ended with an empty chunk, as a complete result does';
  try {
    for (;;) {
      const chunk = await failing.fetchChunk();
      if (chunk === null) {
        outcome = 'ended with null';
        break;
      }
      if (chunk.rowCount === 0) break;
      seen += chunk.rowCount;
    }
  } catch (err) {
    outcome = `threw: ${(err as Error).message}`;
  }
  console.log(
    `streaming a query that fails at row ${failAt.toLocaleString('en')}: ${seen.toLocaleString('en')} rows, then ${outcome}`,
  );

  const stream: Timing[] = [];
  const spool: Timing[] = [];
  for (let r = 0; r < REPS; r++) {
    stream.push(await streamed(connection));
    spool.push(await spooled(connection, r));
  }
  const row = (name: string, t: Timing[]) =>
    `| ${name} | ${median(t.map((x) => x.firstMs)).toFixed(1)} | ${median(t.map((x) => x.lastMs)).toFixed(1)} |`;
  console.log(
    `\n${ROWS.toLocaleString('en')} rows, 4 columns, median of ${REPS}, DuckDB ${(await connection.runAndReadAll('select version()')).getRows()[0]![0]}`,
  );
  console.log('| read | first chunk (ms) | last row (ms) |\n| --- | --: | --: |');
  console.log(row('stream (not used: hides failures)', stream));
  console.log(row('spool, as qrun does', spool));
  const ratioFirst = median(spool.map((x) => x.firstMs)) / median(stream.map((x) => x.firstMs));
  const ratioLast = median(spool.map((x) => x.lastMs)) / median(stream.map((x) => x.lastMs));
  console.log(`\nspool ÷ stream: first chunk ${ratioFirst.toFixed(1)}×, last row ${ratioLast.toFixed(2)}×`);
  connection.closeSync();
  instance.closeSync();
}

await main();
