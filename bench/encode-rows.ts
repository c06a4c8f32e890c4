/**
 * Ingest hot path benchmark: 1,000,000 rows of (bigint, 32-char string, decimal string, timestamptz
 * string) through createRowEncoder + PageWriter with a sink that discards pages.
 * Run: npx tsx bench/encode-rows.ts [rows]
 *
 * Rows come from a pool built before timing starts, so only encoding and paging are measured (the
 * driver's own allocation is the driver's cost). A second pass uses JsonText for the integer column,
 * the form the PostgreSQL/MySQL connectors hand int8 over in.
 */
import { JsonText } from '../src/connectors/connector.js';
import type { CellValue } from '../src/connectors/connector.js';
import { PageWriter } from '../src/encoding/page-writer.js';
import { createRowEncoder } from '../src/encoding/row-encoder.js';

const ROWS = Number(process.argv[2] ?? 1_000_000);
const POOL = 10_000;

function makePool(integerAsJsonText: boolean): CellValue[][] {
  const pool: CellValue[][] = [];
  for (let i = 0; i < POOL; i++) {
    const id = 9_000_000_000_000_000n + BigInt(i);
    const text = (i.toString(16).padStart(8, '0') + 'abcdefghijklmnopqrstuvwx').slice(0, 32);
    const decimal = `${(i * 7919) % 100000}.${String(i % 1000000).padStart(6, '0')}`;
    const ts = new Date(Date.UTC(2026, 0, 1) + i * 1_234_567).toISOString().replace(/\.(\d{3})Z$/, '.$1456Z');
    pool.push([integerAsJsonText ? new JsonText(id.toString()) : id, text, decimal, ts]);
  }
  return pool;
}

async function run(label: string, pool: CellValue[][], rows = ROWS): Promise<number> {
  const encode = createRowEncoder(['id', 'name', 'amount', 'created_at']);
  let bytes = 0;
  const writer = new PageWriter({
    maxRows: 1000,
    maxBytes: 4 * 1024 * 1024,
    sink: async (_page, page) => {
      bytes += page.length;
    },
  });
  const start = process.hrtime.bigint();
  for (let i = 0; i < rows; i++) {
    await writer.push(encode(pool[i % POOL] as CellValue[]));
  }
  const summary = await writer.finish();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rate = rows / seconds;
  console.log(
    `${label}: ${summary.rowCount} rows, ${summary.pageCount} pages, ${(bytes / 1048576).toFixed(1)} MiB ` +
      `in ${seconds.toFixed(3)} s = ${Math.round(rate).toLocaleString('en-US')} rows/s`,
  );
  return rate;
}

const bigintPool = makePool(false);
const textPool = makePool(true);
// A short warm-up so the JIT has optimized the hot path before the timed passes.
await run('warm-up (bigint)', bigintPool, 200_000);
await run('bigint id', bigintPool);
await run('JsonText id', textPool);
