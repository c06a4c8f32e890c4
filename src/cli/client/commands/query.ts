import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { stringify } from 'lossless-json';
import type { ApiClient } from '../api-client.js';
import { CliError, EXIT, usageError } from '../exit-codes.js';
import { chooseFormat, FORMATS } from '../output/formats.js';
import { pages, writeResult, type QueryEnvelope } from '../output/result.js';
import type { Row } from '../output/values.js';
import { ProgressLine, progressWanted } from '../progress.js';
import {
  action,
  apiClient,
  clientCommand,
  positiveInt,
  resolveConnection,
  say,
  Sink,
  type JsonOption,
} from './shared.js';
import { failureText, waitForQuery } from './wait.js';

export interface OutputFlags extends JsonOption {
  output?: string;
  format?: string;
  header: boolean;
  delimiter?: string;
}

interface QueryFlags extends OutputFlags {
  file?: string;
  wait: boolean;
  param?: string[];
  maxRows?: number;
  pageRows?: number;
  timeout?: number;
}

/** The SQL: the argument, else -f (a file, or - for stdin), else stdin when it is not a terminal. */
async function readSql(sql: string | undefined, file: string | undefined): Promise<string> {
  if (sql !== undefined && file !== undefined)
    throw usageError('give the SQL as an argument or with -f, not both');
  let text = sql;
  if (file !== undefined) {
    try {
      text = readFileSync(file === '-' ? 0 : file, 'utf8');
    } catch (err) {
      throw usageError(`cannot read ${file}: ${(err as Error).message}`);
    }
  } else if (text === undefined && !process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    text = Buffer.concat(chunks).toString('utf8');
  }
  if (text === undefined || text.trim() === '') {
    throw usageError('no SQL given: pass it as an argument, with -f FILE, or on stdin');
  }
  return text;
}

/** Adds -o, --format, --no-header and --delimiter (query and queries fetch). */
export function outputOptions(cmd: Command): Command {
  return cmd
    .option('-o, --output <file>', 'write the result to this file instead of stdout')
    .option('--format <format>', `${FORMATS.join('|')} (default: from -o's extension, else table)`)
    .option('--no-header', 'csv/tsv: leave out the header line')
    .option('--delimiter <char>', 'csv: the field delimiter (default ",")');
}

/**
 * Writes a finished query the way the flags ask: --json prints the API's data with every page's rows in
 * `results`; otherwise the rows in the chosen format to stdout or -o.
 */
export async function outputResult(
  api: ApiClient,
  first: QueryEnvelope,
  flags: OutputFlags,
  signal?: AbortSignal,
): Promise<void> {
  if (flags.json) {
    const rows: Row[] = [];
    for await (const page of pages(api, first, signal)) rows.push(...page);
    const sink = new Sink(flags.output);
    await sink.write(`${stringify({ ...first.data, results: rows }) ?? '{}'}\n`);
    await sink.close();
    return;
  }
  const format = chooseFormat(flags.format, flags.output);
  const sink = new Sink(flags.output);
  try {
    const rows = await writeResult(api, first, sink, {
      format,
      header: flags.header,
      delimiter: flags.delimiter,
      signal,
    });
    await sink.close();
    if (first.data.truncated) say(`qrun: the result was cut short at --max-rows (${rows ?? ''} rows)`);
    else if (format === 'table' && process.stderr.isTTY && rows !== undefined) {
      say(`(${rows} ${rows === 1 ? 'row' : 'rows'})`);
    }
  } catch (err) {
    sink.discard();
    throw err;
  }
}

async function runQuery(connectionRef: string, sqlArg: string | undefined, flags: QueryFlags): Promise<void> {
  // A bad --format or -o extension is a usage error before anything runs.
  if (!flags.json) chooseFormat(flags.format, flags.output);
  const sql = await readSql(sqlArg, flags.file);
  const api = apiClient();
  const connection = await resolveConnection(api, connectionRef);
  const body: Record<string, unknown> = { query: sql };
  if (flags.param?.length) body.parameters = flags.param;
  if (flags.maxRows !== undefined) body.max_rows = flags.maxRows;
  if (flags.pageRows !== undefined) body.page_rows = flags.pageRows;
  if (flags.timeout !== undefined) body.timeout_seconds = flags.timeout;

  // Ctrl-C from here on cancels the query on the server (once it has an id) and exits 130; a second
  // Ctrl-C exits at once.
  const controller = new AbortController();
  const state: { queryId?: string; progress?: ProgressLine } = {};
  let interrupted: Promise<never> | undefined;
  const interrupt = (): Promise<never> =>
    (interrupted ??= (async () => {
      state.progress?.stop();
      controller.abort();
      const { queryId } = state;
      if (queryId !== undefined) {
        try {
          await api.raw('POST', `/api/queries/${queryId}/cancel`, { signal: AbortSignal.timeout(10_000) });
          say(`qrun: canceled query ${queryId}`);
        } catch (err) {
          say(`qrun: could not cancel query ${queryId}: ${(err as Error).message}`);
        }
      }
      process.exit(EXIT.interrupted);
    })());
  let submitted = false;
  process.on('SIGINT', () => {
    if (interrupted) process.exit(EXIT.interrupted);
    // While the submit is on its way the id is not known yet: cancel as soon as it is.
    if (!submitted) {
      interrupted = new Promise<never>(() => {});
      return;
    }
    void interrupt();
  });

  const submittedQuery = await api.data<{ id: string; status: string }>(
    'POST',
    `/api/connections/${connection.id}/query`,
    { body, headers: { 'idempotency-key': `qrun-cli-${randomUUID()}` } },
  );
  const queryId = submittedQuery.id;
  state.queryId = queryId;
  submitted = true;
  if (interrupted) {
    interrupted = undefined;
    await interrupt();
  }

  if (!flags.wait) {
    if (flags.json) process.stdout.write(`${JSON.stringify(submittedQuery)}\n`);
    else process.stdout.write(`${queryId}\n`);
    return;
  }

  const progress = new ProgressLine(progressWanted());
  state.progress = progress;
  try {
    const first = await waitForQuery(api, queryId, { progress, signal: controller.signal });
    progress.stop();
    if (first.data.status === 'failed') {
      if (flags.json) process.stdout.write(`${stringify(first.data) ?? '{}'}\n`);
      throw new CliError(`query failed: ${failureText(first.data)}`, EXIT.failed);
    }
    await outputResult(api, first, flags, controller.signal);
  } catch (err) {
    progress.stop();
    if (interrupted) await interrupted;
    throw err;
  }
}

export function registerQuery(program: Command): void {
  const cmd = clientCommand(
    program
      .command('query')
      .description('Run SQL on a connection and print the result (progress on stderr when it is a terminal).')
      .argument('<connection>', 'the connection: its name or id')
      .argument('[sql]', 'the SQL (else -f FILE, else stdin)')
      .option('-f, --file <file>', 'read the SQL from a file (- for stdin)'),
  );
  outputOptions(cmd)
    .option('--no-wait', 'submit, print the query id and exit (read it later with qrun queries fetch)')
    .option('-p, --param <value>', 'a positional parameter ($1, ? …); repeat for more', collect)
    .option('--max-rows <n>', 'stop after this many rows', positiveInt('--max-rows'))
    .option('--page-rows <n>', 'rows per result page on the server', positiveInt('--page-rows'))
    .option('--timeout <seconds>', 'seconds the query may run', positiveInt('--timeout'))
    .addHelpText(
      'after',
      `
Examples:
  $ qrun query warehouse "select n, n * n as square from generate_series(1, 5) n"
  $ qrun query warehouse -f report.sql -o report.csv
  $ echo "select * from orders" | qrun query warehouse --format ndjson > orders.ndjson
  $ qrun query warehouse "select * from big" -o big.parquet
  $ qrun query warehouse 'select * from users where id = $1' -p 42 --json
  $ qrun query warehouse "select pg_sleep(600)" --no-wait

The result goes to stdout (or -o) and nothing else does: progress and messages go to stderr.
Without --format the format comes from -o's extension (.csv .tsv .ndjson .jsonl .json .parquet .arrow .txt),
else it is table, also when stdout is not a terminal. parquet and arrow come from the server's export endpoint.
Ctrl-C cancels the query on the server and exits 130. Exit codes: 0 done, 1 the query failed,
2 usage error, 3 server unreachable or key refused.`,
    )
    .action(action(runQuery));
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
