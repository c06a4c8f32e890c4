import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import type { ApiClient } from '../api-client.js';
import { CliError, EXIT, usageError } from '../exit-codes.js';
import { renderTable } from '../output/table.js';
import { valueText, type Row } from '../output/values.js';
import {
  action,
  apiClient,
  clientCommand,
  printJson,
  resolveConnection,
  say,
  type ConnectionData,
  type JsonOption,
} from './shared.js';
import { failureText, waitForQuery } from './wait.js';

interface ConnectionTypeData {
  id: string;
  name: string;
  fields: { name: string; type: string; required: boolean; secret: boolean }[];
}

function typeName(c: ConnectionData): string {
  return typeof c.type === 'string' ? c.type : c.type.id;
}

async function list(flags: JsonOption): Promise<void> {
  const api = apiClient();
  const all = await api.data<ConnectionData[]>('GET', '/api/connections');
  if (flags.json) return printJson(all);
  const rows: Row[] = all.map((c) => ({
    id: c.id,
    name: c.name,
    type: typeName(c),
    status: (c.status as string | undefined) ?? null,
  }));
  process.stdout.write(
    renderTable([{ name: 'id' }, { name: 'name' }, { name: 'type' }, { name: 'status' }], rows, {
      maxWidth: process.stdout.isTTY ? process.stdout.columns : undefined,
    }),
  );
}

async function show(ref: string, flags: JsonOption): Promise<void> {
  const api = apiClient();
  const c = await resolveConnection(api, ref);
  if (flags.json) return printJson(c);
  const line = (key: string, value: unknown) => {
    const text = valueText(value);
    if (text !== null) process.stdout.write(`${`${key}:`.padEnd(16)}${text}\n`);
  };
  line('id', c.id);
  line('name', c.name);
  line('type', typeName(c));
  line('status', c.status);
  line('status_error', c.status_error);
  line('created_at', c.created_at);
  line('updated_at', c.updated_at);
  const configuration = (c.configuration ?? {}) as Record<string, unknown>;
  process.stdout.write('configuration:\n');
  for (const [key, value] of Object.entries(configuration)) {
    process.stdout.write(`  ${`${key}:`.padEnd(14)}${valueText(value) ?? 'null'}\n`);
  }
}

/** A --set value in the type of its field (GET /api/connection_types): integers and booleans unquoted. */
function coerce(value: string, fieldType: string | undefined, key: string): unknown {
  if (fieldType === 'integer') {
    if (!/^-?\d+$/.test(value)) throw usageError(`${key} must be a whole number, not "${value}"`);
    return Number(value);
  }
  if (fieldType === 'boolean') {
    if (!/^(true|false)$/i.test(value)) throw usageError(`${key} must be true or false, not "${value}"`);
    return value.toLowerCase() === 'true';
  }
  return value;
}

async function configurationFrom(
  api: ApiClient,
  type: string,
  sets: string[] | undefined,
  file: string | undefined,
): Promise<Record<string, unknown>> {
  if (sets?.length && file !== undefined) throw usageError('give --set or --file, not both');
  if (file !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8'));
    } catch (err) {
      throw usageError(`cannot read the configuration from ${file}: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw usageError(`${file} must hold a JSON object (the configuration)`);
    }
    return parsed as Record<string, unknown>;
  }
  const types = await api.data<ConnectionTypeData[]>('GET', '/api/connection_types');
  const known = types.find((t) => t.id === type);
  if (!known)
    throw usageError(`unknown connection type "${type}": use one of ${types.map((t) => t.id).join(', ')}`);
  const configuration: Record<string, unknown> = {};
  for (const pair of sets ?? []) {
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq);
    const field = known.fields.find((f) => f.name === key);
    if (!field) {
      throw usageError(
        `${type} has no field "${key}": its fields are ${known.fields.map((f) => f.name).join(', ')}`,
      );
    }
    configuration[key] = coerce(pair.slice(eq + 1), field.type, key);
  }
  return configuration;
}

async function create(
  name: string,
  flags: JsonOption & { type: string; set?: string[]; file?: string; validate: boolean },
): Promise<void> {
  const api = apiClient();
  const configuration = await configurationFrom(api, flags.type, flags.set, flags.file);
  const body: Record<string, unknown> = { name, type: flags.type, configuration };
  if (!flags.validate) body.validate = false;
  const created = await api.data<ConnectionData>('POST', '/api/connections', { body });
  if (flags.json) return printJson(created);
  process.stdout.write(`${created.id}\n`);
  say(`qrun: created connection "${created.name}" (${typeName(created)})`);
}

/**
 * Runs `select 1` on the stored connection (with its stored secrets) through the query runner: the
 * connection works when that query is done.
 */
async function test(ref: string, flags: JsonOption): Promise<void> {
  const api = apiClient();
  const c = await resolveConnection(api, ref);
  const submitted = await api.data<{ id: string }>('POST', `/api/connections/${c.id}/query`, {
    body: { query: 'select 1' },
  });
  const end = await waitForQuery(api, submitted.id, {});
  const ok = end.data.status === 'done';
  const outcome = {
    id: c.id,
    name: c.name,
    status: ok ? 'healthy' : 'unhealthy',
    error: ok ? null : (end.data.error ?? null),
  };
  if (flags.json) printJson(outcome);
  else if (ok) process.stdout.write(`${c.name}: healthy\n`);
  if (!ok) throw new CliError(`${c.name}: ${failureText(end.data)}`, EXIT.failed);
}

async function remove(ref: string, flags: JsonOption): Promise<void> {
  const api = apiClient();
  const c = await resolveConnection(api, ref);
  await api.raw('DELETE', `/api/connections/${c.id}`);
  if (flags.json) return printJson({ id: c.id, deleted: true });
  say(`qrun: deleted connection "${c.name}" (${c.id})`);
}

function collectPair(value: string, previous: string[] | undefined): string[] {
  if (value.indexOf('=') < 1) throw new InvalidArgumentError('expected key=value.');
  return [...(previous ?? []), value];
}

export function registerConnections(program: Command): void {
  const connections = clientCommand(
    program
      .command('connections')
      .description("Your organization's database connections: list, show, create, test, delete."),
    { json: false },
  ).addHelpText(
    'after',
    `
Examples:
  $ qrun connections list
  $ qrun connections create warehouse --type postgresql --set hostname=db.internal --set port=5432 \\
      --set database=analytics --set username=reader --set password=s3cret
  $ qrun connections test warehouse
  $ qrun connections show warehouse --json`,
  );

  clientCommand(connections.command('list').description('List the connections (secrets never shown).'))
    .addHelpText('after', '\nExample:\n  $ qrun connections list --json')
    .action(action(list));
  clientCommand(
    connections
      .command('show')
      .description('Show a connection and its configuration (secrets as ********).')
      .argument('<connection>', 'its name or id'),
  )
    .addHelpText('after', '\nExample:\n  $ qrun connections show warehouse')
    .action(action(show));
  clientCommand(
    connections
      .command('create')
      .description('Create a connection (admins and the organization key); prints its id.')
      .argument('<name>', 'the new connection’s name')
      .requiredOption('--type <type>', 'postgresql, mysql, sqlite, duckdb … (GET /api/connection_types)')
      .option('--set <key=value>', 'a configuration field; repeat for more', collectPair)
      .option('--file <file>', 'the configuration as a JSON object (- for stdin)')
      .option('--no-validate', 'save without connecting first'),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ qrun connections create local --type sqlite --set path=app.db
  $ qrun connections create warehouse --type postgresql --file warehouse.json`,
    )
    .action(action(create));
  clientCommand(
    connections
      .command('test')
      .description('Check that a stored connection works: runs "select 1" on it (exit 1 when it fails).')
      .argument('<connection>', 'its name or id'),
  )
    .addHelpText('after', '\nExample:\n  $ qrun connections test warehouse')
    .action(action(test));
  clientCommand(
    connections
      .command('delete')
      .description('Delete a connection (admins and the organization key).')
      .argument('<connection>', 'its name or id'),
  )
    .addHelpText('after', '\nExample:\n  $ qrun connections delete 0b6f8e62-4f1d-4c55-8a3e-7d9c2b1a0e44')
    .action(action(remove));
}
