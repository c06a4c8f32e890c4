import type { Command } from 'commander';
import { stringify } from 'lossless-json';
import { CliError, EXIT, usageError } from '../exit-codes.js';
import { chooseFormat } from '../output/formats.js';
import type { QueryEnvelope } from '../output/result.js';
import { renderTable } from '../output/table.js';
import { valueText, type Row } from '../output/values.js';
import { ProgressLine, progressWanted } from '../progress.js';
import { outputOptions, outputResult, type OutputFlags } from './query.js';
import {
  action,
  apiClient,
  clientCommand,
  isUuid,
  positiveInt,
  printJson,
  type JsonOption,
} from './shared.js';
import { failureText, waitForQuery } from './wait.js';

interface QuerySummary {
  id: string;
  status: string;
  connection_id: string;
  query: string;
  count: unknown;
  error: string | null;
  created_at: string;
  finished_at: string | null;
  [key: string]: unknown;
}

function checkId(id: string): string {
  if (!isUuid(id)) throw usageError(`"${id}" is not a query id (a UUID)`);
  return id;
}

/** The first line of the SQL, cut to `max` characters. */
function sqlSummary(sql: string, max = 60): string {
  const line = sql.trim().replace(/\s+/g, ' ');
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

async function list(flags: JsonOption & { limit?: number; all?: boolean }): Promise<void> {
  const api = apiClient();
  const limit = flags.limit ?? 50;
  const items: QuerySummary[] = [];
  let next: string | null | undefined = `/api/queries?limit=${Math.min(limit, 200)}`;
  while (next) {
    const page: { data: QuerySummary[]; links?: { next?: string | null } } = await api.json('GET', next);
    items.push(...page.data);
    next = flags.all || items.length < limit ? page.links?.next : undefined;
  }
  const shown = flags.all ? items : items.slice(0, limit);
  if (flags.json) return printJson(shown);
  const rows: Row[] = shown.map((q) => ({
    id: q.id,
    status: q.status === 'failed' && q.error ? `failed: ${sqlSummary(q.error, 30)}` : q.status,
    rows: q.count ?? null,
    created_at: q.created_at,
    query: sqlSummary(q.query),
  }));
  process.stdout.write(
    renderTable(
      [{ name: 'id' }, { name: 'status' }, { name: 'rows' }, { name: 'created_at' }, { name: 'query' }],
      rows,
      { maxWidth: process.stdout.isTTY ? process.stdout.columns : undefined },
    ),
  );
}

async function show(id: string, flags: JsonOption): Promise<void> {
  const api = apiClient();
  const body = await api.json<QueryEnvelope>('GET', `/api/queries/${checkId(id)}`);
  if (flags.json) return printJson(body.data);
  const d = body.data;
  const lines: [string, string | undefined][] = [
    ['id', d.id],
    ['status', d.status],
    ['queue_position', valueText(d.queue_position) ?? undefined],
    [
      'progress',
      d.progress
        ? `${valueText((d.progress as Record<string, unknown>).rows)} rows, ${valueText((d.progress as Record<string, unknown>).pages)} pages`
        : undefined,
    ],
    ['fields', d.fields?.join(', ')],
    ['count', valueText(d.count) ?? undefined],
    ['truncated', d.truncated === undefined ? undefined : String(d.truncated)],
    ['expires', d.expires],
    ['error', d.status === 'failed' ? failureText(d) : undefined],
  ];
  for (const [key, value] of lines) {
    if (value !== undefined) process.stdout.write(`${`${key}:`.padEnd(16)}${value}\n`);
  }
}

async function cancel(id: string, flags: JsonOption): Promise<void> {
  const api = apiClient();
  const data = await api.data<{ id: string; status: string; error: string | null }>(
    'POST',
    `/api/queries/${checkId(id)}/cancel`,
  );
  if (flags.json) return printJson(data);
  process.stdout.write(`${data.id} ${data.status}${data.error ? `: ${data.error}` : ''}\n`);
}

async function fetchResult(id: string, flags: OutputFlags): Promise<void> {
  if (!flags.json) chooseFormat(flags.format, flags.output);
  const api = apiClient();
  const progress = new ProgressLine(progressWanted());
  let first: QueryEnvelope;
  try {
    first = await waitForQuery(api, checkId(id), { progress });
  } finally {
    progress.stop();
  }
  if (first.data.status === 'failed') {
    if (flags.json) process.stdout.write(`${stringify(first.data) ?? '{}'}\n`);
    throw new CliError(`query failed: ${failureText(first.data)}`, EXIT.failed);
  }
  await outputResult(api, first, flags);
}

export function registerQueries(program: Command): void {
  const queries = clientCommand(
    program
      .command('queries')
      .description('Your queries: list them, show one, cancel one, fetch a result again.'),
    { json: false },
  ).addHelpText(
    'after',
    `
Examples:
  $ qrun queries list
  $ qrun queries show 6f1c2a4e-0b6d-4f0e-9a51-2f3c4d5e6f70
  $ qrun queries fetch 6f1c2a4e-0b6d-4f0e-9a51-2f3c4d5e6f70 -o result.parquet
  $ qrun queries cancel 6f1c2a4e-0b6d-4f0e-9a51-2f3c4d5e6f70`,
  );

  clientCommand(queries.command('list').description('List your queries, newest first.'))
    .option('--limit <n>', 'how many (default 50)', positiveInt('--limit'))
    .option('--all', 'every query of yours (follows links.next to the end)')
    .addHelpText('after', '\nExample:\n  $ qrun queries list --limit 10 --json')
    .action(action(list));
  clientCommand(
    queries
      .command('show')
      .description('Show a query: status, progress, row count, error (not its rows: see fetch).')
      .argument('<id>', 'the query id'),
  )
    .addHelpText('after', '\nExample:\n  $ qrun queries show 6f1c2a4e-0b6d-4f0e-9a51-2f3c4d5e6f70 --json')
    .action(action(show));
  clientCommand(
    queries
      .command('cancel')
      .description('Stop a waiting or running query on the database; it ends failed with error "canceled".')
      .argument('<id>', 'the query id'),
  )
    .addHelpText('after', '\nExample:\n  $ qrun queries cancel 6f1c2a4e-0b6d-4f0e-9a51-2f3c4d5e6f70')
    .action(action(cancel));
  outputOptions(
    clientCommand(
      queries
        .command('fetch')
        .description("Write an earlier query's result (waits for it to end first), like qrun query does.")
        .argument('<id>', 'the query id'),
    ),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ qrun queries fetch 6f1c2a4e-0b6d-4f0e-9a51-2f3c4d5e6f70 --format csv > result.csv
  $ qrun queries fetch 6f1c2a4e-0b6d-4f0e-9a51-2f3c4d5e6f70 -o result.arrow`,
    )
    .action(action(fetchResult));
}
