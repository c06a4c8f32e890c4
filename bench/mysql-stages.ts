/**
 * The MariaDB ingest in stages, in one process, against mysql2's own streaming of the same rows:
 * mysql2 alone, qrun's MySQL connector alone, + the row encoder, + page cutting (pages discarded),
 * + storing the pages (FsResultStore in a temporary directory, 4 writes in flight as the worker has),
 * with and without O_DSYNC (the server always syncs; the second only shows what the sync costs).
 * The stages run interleaved, so each repetition sees the same machine load; medians are printed.
 * Run: npx tsx bench/mysql-stages.ts [reps] [rows]   (fills qrun_mysql_stages.bench_rows as `npm run
 * bench` fills its table, and drops the database at the end).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CellValue } from '../src/connectors/connector.js';
import { mysqlConnector } from '../src/connectors/mysql/mysql-connector.js';
import { PageWriter, ROW_ADDED } from '../src/encoding/page-writer.js';
import { createRowEncoder } from '../src/encoding/row-encoder.js';
import { EgressPolicy } from '../src/net/egress-policy.js';
import { FsResultStore } from '../src/results/fs-result-store.js';
import { dropDatabases, MARIADB, prepareMariadb, TABLE_QUERY, warmTables } from './lib/databases.js';
import { mysql2Stream } from './lib/references.js';
import { median } from './lib/stats.js';
import { timed } from './lib/util.js';

const reps = Number(process.argv[2] ?? 5);
const rows = Number(process.argv[3] ?? 1_000_000);
const database = 'qrun_mysql_stages';
const config = mysqlConnector.parseConfig({
  hostname: MARIADB.host,
  port: MARIADB.port,
  dbname: database,
  account: MARIADB.user,
});
const context = { fileDir: '/nonexistent', egress: new EgressPolicy() };

const storeDir = await mkdtemp(path.join(tmpdir(), 'qrun-mysql-stages-'));
const stores = {
  store: new FsResultStore(path.join(storeDir, 'sync')),
  nosync: new FsResultStore(path.join(storeDir, 'nosync'), { fsync: false }),
};

async function connector(
  sql: string,
  stage: 'rows' | 'encode' | 'pages' | 'store' | 'nosync',
): Promise<number> {
  const stream = await mysqlConnector.stream(
    config,
    sql,
    [],
    { signal: new AbortController().signal, batchSize: 1000 },
    context,
  );
  const encode = createRowEncoder(stream.columns.map((c) => c.name));
  const queryId = randomUUID();
  const writer = new PageWriter({
    maxRows: 1000,
    maxBytes: 4 * 1024 * 1024,
    writesInFlight: 4,
    sink:
      stage === 'store' || stage === 'nosync'
        ? (page, bytes) => stores[stage].putPage(queryId, page, bytes)
        : async () => undefined,
  });
  let count = 0;
  let length = 0;
  for await (const batch of stream.rows) {
    for (const row of batch as CellValue[][]) {
      count++;
      if (stage === 'encode') length += encode(row).length;
      else if (stage !== 'rows') {
        const pushed = writer.push(encode(row));
        if (pushed !== ROW_ADDED) await pushed;
      }
    }
  }
  if (stage !== 'rows' && stage !== 'encode') await writer.finish();
  if (stage === 'store' || stage === 'nosync') await stores[stage].deleteResult(queryId);
  return count + (length < 0 ? 1 : 0);
}

const stages: [string, (sql: string) => Promise<number>][] = [
  ['mysql2 row streaming (reference)', (sql) => mysql2Stream(database, sql)],
  ['qrun connector (rows only)', (sql) => connector(sql, 'rows')],
  ['connector + row encoder', (sql) => connector(sql, 'encode')],
  ['connector + encoder + pages', (sql) => connector(sql, 'pages')],
  ['... + pages stored (FsResultStore)', (sql) => connector(sql, 'store')],
  ['... stored without O_DSYNC', (sql) => connector(sql, 'nosync')],
];

await prepareMariadb(database, rows);
await warmTables(database, ['mysql']);
for (const [, run] of stages) await run(`${TABLE_QUERY} LIMIT ${Math.max(1, Math.floor(rows / 10))}`);
const samples = new Map<string, number[]>(stages.map(([name]) => [name, []]));
for (let rep = 0; rep < reps; rep++) {
  for (let i = 0; i < stages.length; i++) {
    const [name, run] = stages[(i + rep) % stages.length]!;
    const { seconds, value } = await timed(() => run(TABLE_QUERY));
    if (value !== rows) throw new Error(`${name} read ${value} rows, expected ${rows}`);
    samples.get(name)!.push(seconds);
  }
}
const reference = median(samples.get(stages[0]![0])!);
for (const [name] of stages) {
  const m = median(samples.get(name)!);
  const runs = samples
    .get(name)!
    .map((x) => x.toFixed(3))
    .join(' ');
  console.log(`${name.padEnd(34)} median ${m.toFixed(3)} s  ${(m / reference).toFixed(2)}×  (${runs})`);
}
await dropDatabases(database, ['mysql']);
await rm(storeDir, { recursive: true, force: true });
