/**
 * The `qrun` command-line client (docs/CLI.md), run as a user runs it: child processes of the compiled
 * binary (`npm run build` first) against a real qrun server on a real port, with HOME and
 * XDG_CONFIG_HOME in a temporary directory. Outputs are checked byte for byte against test/cli/expected/
 * (QRUN_UPDATE_EXPECTED=1 rewrites them).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseExact } from '../../src/cli/client/api-client.js';
import { rowFormatter } from '../../src/cli/client/output/formats.js';
import { columnsOf, type QueryEnvelope } from '../../src/cli/client/output/result.js';
import { freePort, QRUN_BIN } from '../helpers/process.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitForQueryEnd, waitUntil } from '../helpers/wait.js';

const EXPECTED = path.join(path.dirname(fileURLToPath(import.meta.url)), 'expected');
const UUID_LINE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n$/;
const PG = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };

/** A fixed result: 64-bit extremes, an exact decimal, NULLs, quotes, commas, a newline, a tab, wide characters. */
const FIXED_SQL = `select * from (values
  (1, 9223372036854775807::int8, 12345678901234567890.000001::numeric, 'Ada'::text, true, '{"k": [1, 2.50]}'::jsonb, ''::text),
  (2, '-9223372036854775808'::int8, 0.1::numeric, null, false, null, E'two\\nlines'),
  (3, 0::int8, -1.50::numeric, 'comma, "quote"', null, '[]'::jsonb, E'tab\\there'),
  (4, 42::int8, null, '東京', true, '{}'::jsonb, null)
) as t(id, big, amount, name, flag, doc, note) order by id`;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

let server: TestServer;
let home: string;
let work: string;
let connectionId: string;

/** The environment of every run: a home of its own, no colour, no CI, no QRUN_URL / QRUN_API_KEY. */
function baseEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['QRUN_URL', 'QRUN_API_KEY', 'CI', 'FORCE_COLOR', 'XDG_CONFIG_HOME']) delete env[name];
  Object.assign(env, { HOME: home, XDG_CONFIG_HOME: path.join(home, 'xdg'), NO_COLOR: '1' });
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/** Env that points the client at the test server with the admin key (no config file needed). */
function asAdmin(): Record<string, string> {
  return { QRUN_URL: server.url, QRUN_API_KEY: server.adminKey };
}

function startCli(
  args: string[],
  options: { env?: Record<string, string | undefined>; input?: string } = {},
) {
  const child = spawn(process.execPath, [QRUN_BIN, ...args], {
    env: baseEnv(options.env),
    cwd: work,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(options.input ?? '');
  const done = new Promise<Run>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done, stdout: () => stdout, stderr: () => stderr };
}

function cli(args: string[], options: { env?: Record<string, string | undefined>; input?: string } = {}) {
  return startCli(args, options).done;
}

/** Compares with test/cli/expected/<name> byte for byte (or rewrites it with QRUN_UPDATE_EXPECTED=1). */
function expectSameAs(name: string, actual: string): void {
  const file = path.join(EXPECTED, name);
  if (process.env.QRUN_UPDATE_EXPECTED === '1') writeFileSync(file, actual);
  expect(actual).toBe(readFileSync(file, 'utf8'));
}

async function withPg<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(PG);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Active statements whose text contains `marker`, other than the one asking. */
function activeStatements(marker: string): Promise<number> {
  return withPg(async (c) => {
    const r = await c.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity
        where state = 'active' and pid <> pg_backend_pid() and strpos(query, $1) > 0`,
      [marker],
    );
    return r.rows[0]!.n;
  });
}

beforeAll(async () => {
  server = await startTestServer();
  home = mkdtempSync(path.join(tmpdir(), 'qrun-cli-home-'));
  work = mkdtempSync(path.join(tmpdir(), 'qrun-cli-work-'));
  const created = await server.request('POST', '/api/connections', {
    auth: { bearer: server.adminKey },
    body: {
      name: 'pg',
      type: 'postgresql',
      configuration: {
        hostname: PG.host,
        port: PG.port,
        database: PG.database,
        username: PG.user,
        password: 'x',
      },
    },
  });
  expect(created.status, created.text).toBe(200);
  connectionId = created.body.data.id;
});

afterAll(async () => {
  await server?.close();
  if (home) rmSync(home, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('login and logout', () => {
  it('checks the key with /api/me, stores it 0600 in $XDG_CONFIG_HOME/qrun (0700), and logout removes it', async () => {
    const xdg = mkdtempSync(path.join(tmpdir(), 'qrun-cli-xdg-'));
    try {
      const env = { XDG_CONFIG_HOME: xdg };
      const login = await cli(['login', '--url', server.url, '--api-key', server.adminKey, '--json'], {
        env,
      });
      expect(login.code, login.stderr).toBe(0);
      expect(JSON.parse(login.stdout)).toMatchObject({ email: 'admin@localhost', is_user: true });
      const file = path.join(xdg, 'qrun', 'config.json');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ url: server.url, api_key: server.adminKey });

      // The stored login is used by the other commands.
      const list = await cli(['connections', 'list', '--json'], { env });
      expect(list.code, list.stderr).toBe(0);
      expect(JSON.parse(list.stdout).map((c: any) => c.name)).toContain('pg');

      const logout = await cli(['logout'], { env });
      expect(logout.code).toBe(0);
      expect(existsSync(file)).toBe(false);
      const after = await cli(['connections', 'list'], { env });
      expect(after.code).toBe(3);
      expect(after.stderr).toMatch(/not logged in/);
      expect(after.stdout).toBe('');
    } finally {
      rmSync(xdg, { recursive: true, force: true });
    }
  });

  it('uses ~/.config/qrun without XDG_CONFIG_HOME', async () => {
    const login = await cli(['login', '--url', server.url, '--api-key', server.adminKey], {
      env: { XDG_CONFIG_HOME: undefined },
    });
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toBe('');
    expect(login.stderr).toMatch(/logged in to .* as admin@localhost/);
    const file = path.join(home, '.config', 'qrun', 'config.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const logout = await cli(['logout'], { env: { XDG_CONFIG_HOME: undefined } });
    expect(logout.code).toBe(0);
    expect(existsSync(file)).toBe(false);
  });

  it('refuses a wrong key with exit 3 and stores nothing', async () => {
    const r = await cli(['login', '--url', server.url, '--api-key', 'qrun_u_not-a-key']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/401/);
    expect(existsSync(path.join(home, 'xdg', 'qrun', 'config.json'))).toBe(false);
  });

  it('exits 3 when the server cannot be reached', async () => {
    const port = await freePort();
    const r = await cli(['connections', 'list'], {
      env: { QRUN_URL: `http://127.0.0.1:${port}`, QRUN_API_KEY: server.adminKey },
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cannot reach/);
    expect(r.stdout).toBe('');
  });

  it('QRUN_URL and QRUN_API_KEY win over the file', async () => {
    const xdg = mkdtempSync(path.join(tmpdir(), 'qrun-cli-xdg-'));
    try {
      const login = await cli(['login', '--url', server.url, '--api-key', server.adminKey], {
        env: { XDG_CONFIG_HOME: xdg },
      });
      expect(login.code).toBe(0);
      const r = await cli(['connections', 'list'], {
        env: { XDG_CONFIG_HOME: xdg, QRUN_API_KEY: 'qrun_u_revoked' },
      });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/unauthorized/);
    } finally {
      rmSync(xdg, { recursive: true, force: true });
    }
  });
});

describe('connections', () => {
  it('creates with --set, lists, shows, tests and deletes', async () => {
    const name = `cli-${randomBytes(3).toString('hex')}`;
    const create = await cli(
      [
        'connections',
        'create',
        name,
        '--type',
        'postgresql',
        '--set',
        `hostname=${PG.host}`,
        '--set',
        `port=${PG.port}`,
        '--set',
        `database=${PG.database}`,
        '--set',
        `username=${PG.user}`,
        '--set',
        'password=s3cret',
      ],
      { env: asAdmin() },
    );
    expect(create.code, create.stderr).toBe(0);
    expect(create.stdout).toMatch(UUID_LINE);
    const id = create.stdout.trim();

    const list = await cli(['connections', 'list'], { env: asAdmin() });
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`^ ${id} \\| ${name} \\| postgresql \\| healthy$`, 'm'));

    const show = await cli(['connections', 'show', name], { env: asAdmin() });
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(`id:             ${id}\n`);
    expect(show.stdout).toContain('  password:     ********\n');
    expect(show.stdout).not.toContain('s3cret');

    const showJson = await cli(['connections', 'show', id, '--json'], { env: asAdmin() });
    expect(JSON.parse(showJson.stdout)).toMatchObject({ id, name, configuration: { port: 5432 } });

    const test = await cli(['connections', 'test', name], { env: asAdmin() });
    expect(test.code, test.stderr).toBe(0);
    expect(test.stdout).toBe(`${name}: healthy\n`);

    const del = await cli(['connections', 'delete', name, '--json'], { env: asAdmin() });
    expect(del.code, del.stderr).toBe(0);
    expect(JSON.parse(del.stdout)).toEqual({ id, deleted: true });
    const gone = await cli(['connections', 'show', id], { env: asAdmin() });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/404/);
  });

  it('creates from --file, and test exits 1 with the database message when the connection fails', async () => {
    const name = `cli-bad-${randomBytes(3).toString('hex')}`;
    const file = path.join(work, `${name}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        hostname: PG.host,
        port: PG.port,
        database: 'qrun_no_such_database',
        username: PG.user,
      }),
    );
    const create = await cli(
      ['connections', 'create', name, '--type', 'postgresql', '--file', file, '--no-validate', '--json'],
      { env: asAdmin() },
    );
    expect(create.code, create.stderr).toBe(0);
    expect(JSON.parse(create.stdout)).toMatchObject({ name, status: 'untested' });
    const test = await cli(['connections', 'test', name], { env: asAdmin() });
    expect(test.code).toBe(1);
    expect(test.stdout).toBe('');
    expect(test.stderr).toMatch(/qrun_no_such_database/);
    expect((await cli(['connections', 'delete', name], { env: asAdmin() })).code).toBe(0);
  });

  it('names a usage error with exit 2', async () => {
    const noType = await cli(['connections', 'create', 'x'], { env: asAdmin() });
    expect(noType.code).toBe(2);
    expect(noType.stderr).toMatch(/--type/);
    const badField = await cli(['connections', 'create', 'x', '--type', 'postgresql', '--set', 'nope=1'], {
      env: asAdmin(),
    });
    expect(badField.code).toBe(2);
    expect(badField.stderr).toMatch(/no field "nope"/);
  });
});

describe('query', () => {
  for (const format of ['table', 'csv', 'tsv', 'ndjson', 'json'] as const) {
    it(`writes the exact result as ${format}`, async () => {
      const r = await cli(['query', 'pg', FIXED_SQL, '--format', format], { env: asAdmin() });
      expect(r.code, r.stderr).toBe(0);
      // Nothing but the data on stdout, and no progress on a stderr that is not a terminal.
      expect(r.stderr).toBe('');
      expectSameAs(`fixed.${format}.txt`, r.stdout);
    });
  }

  it('is a table by default, takes the connection id, and reads the SQL from stdin or -f', async () => {
    const byName = await cli(['query', 'pg', FIXED_SQL], { env: asAdmin() });
    expectSameAs('fixed.table.txt', byName.stdout);
    const stdin = await cli(['query', connectionId], { env: asAdmin(), input: FIXED_SQL });
    expect(stdin.code, stdin.stderr).toBe(0);
    expectSameAs('fixed.table.txt', stdin.stdout);
    const file = path.join(work, 'fixed.sql');
    writeFileSync(file, FIXED_SQL);
    const fromFile = await cli(['query', 'pg', '-f', file, '--format', 'csv'], { env: asAdmin() });
    expectSameAs('fixed.csv.txt', fromFile.stdout);
  });

  it('writes -o files in the format of their extension', async () => {
    for (const [ext, format] of [
      ['csv', 'csv'],
      ['ndjson', 'ndjson'],
      ['json', 'json'],
      ['tsv', 'tsv'],
    ]) {
      const out = path.join(work, `out.${ext}`);
      const r = await cli(['query', 'pg', FIXED_SQL, '-o', out], { env: asAdmin() });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('');
      expectSameAs(`fixed.${format}.txt`, readFileSync(out, 'utf8'));
    }
    const unknown = await cli(['query', 'pg', 'select 1', '-o', path.join(work, 'out.xyz')], {
      env: asAdmin(),
    });
    expect(unknown.code).toBe(2);
  });

  it('passes --no-header and --delimiter to the export', async () => {
    const r = await cli(
      [
        'query',
        'pg',
        "select 1 as a, 'x;y' as b, null as c",
        '--format',
        'csv',
        '--no-header',
        '--delimiter',
        ';',
      ],
      { env: asAdmin() },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('1;"x;y";\r\n');
  });

  it('follows links.next through every page, in order', async () => {
    const r = await cli(
      [
        'query',
        'pg',
        'select n from generate_series(1, 2500) n order by n',
        '--page-rows',
        '1000',
        '--format',
        'csv',
      ],
      { env: asAdmin() },
    );
    expect(r.code, r.stderr).toBe(0);
    const expected = ['n', ...Array.from({ length: 2500 }, (_, i) => String(i + 1))].join('\r\n') + '\r\n';
    expect(r.stdout).toBe(expected);
  });

  it('writes parquet and arrow from the export endpoint, the same bytes as its download', async () => {
    const submitted = await cli(['query', 'pg', FIXED_SQL, '--no-wait'], { env: asAdmin() });
    const id = submitted.stdout.trim();
    await waitForQueryEnd(server, { bearer: server.adminKey }, id);
    const download = async (format: string) => {
      const res = await fetch(`${server.url}/api/queries/${id}/export?format=${format}`, {
        headers: { authorization: `Bearer ${server.adminKey}` },
      });
      expect(res.status).toBe(200);
      return Buffer.from(await res.arrayBuffer());
    };

    const parquetFile = path.join(work, 'fixed.parquet');
    const parquet = await cli(['queries', 'fetch', id, '-o', parquetFile], { env: asAdmin() });
    expect(parquet.code, parquet.stderr).toBe(0);
    expect(parquet.stdout).toBe('');
    const bytes = readFileSync(parquetFile);
    expect(bytes.subarray(0, 4).toString()).toBe('PAR1');
    expect(bytes.subarray(-4).toString()).toBe('PAR1');
    expect(bytes.equals(await download('parquet'))).toBe(true);

    // Binary to a pipe is fine (stdout is not a terminal here): read it as bytes.
    const arrow = spawn(process.execPath, [QRUN_BIN, 'queries', 'fetch', id, '--format', 'arrow'], {
      env: baseEnv(asAdmin()),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const chunks: Buffer[] = [];
    arrow.stdout.on('data', (d: Buffer) => chunks.push(d));
    const code = await new Promise((resolve) => arrow.on('close', resolve));
    expect(code).toBe(0);
    const arrowBytes = Buffer.concat(chunks);
    expect(arrowBytes.readUInt32LE(0)).toBe(0xffffffff); // an Arrow IPC stream's continuation marker
    expect(arrowBytes.equals(await download('arrow'))).toBe(true);

    // A query run straight to a .parquet file.
    const direct = path.join(work, 'direct.parquet');
    const run = await cli(['query', 'pg', 'select 1 as x', '-o', direct], { env: asAdmin() });
    expect(run.code, run.stderr).toBe(0);
    expect(readFileSync(direct).subarray(0, 4).toString()).toBe('PAR1');
  });

  it('the fallback for servers without the export endpoint writes what the export writes', async () => {
    // Without JSON columns: the export keeps the database's own JSON text, the fallback writes it compact.
    const sql = `select id, big, amount, name, flag, note from (${FIXED_SQL}) f order by id`;
    const submitted = await server.request('POST', `/api/connections/${connectionId}/query`, {
      auth: { bearer: server.adminKey },
      body: { query: sql },
    });
    const id = submitted.body.data.id;
    await waitForQueryEnd(server, { bearer: server.adminKey }, id);
    const page = await fetch(`${server.url}/api/queries/${id}`, {
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
    const body = parseExact<QueryEnvelope>(await page.text());
    for (const format of ['csv', 'tsv', 'ndjson', 'json'] as const) {
      const formatter = rowFormatter(format, columnsOf(body.data));
      const local = formatter.start() + formatter.rows(body.data.results ?? []) + formatter.end();
      const res = await fetch(`${server.url}/api/queries/${id}/export?format=${format}`, {
        headers: { authorization: `Bearer ${server.adminKey}` },
      });
      expect(local, format).toBe(await res.text());
    }
  });

  it('--json prints the API data with every row in results', async () => {
    const r = await cli(['query', 'pg', FIXED_SQL, '--json'], { env: asAdmin() });
    expect(r.code, r.stderr).toBe(0);
    const text = r.stdout;
    expect(text).toContain('"big":9223372036854775807');
    expect(text).toContain('"big":-9223372036854775808');
    expect(text).toContain('"amount":"12345678901234567890.000001"');
    const data = JSON.parse(text);
    expect(data).toMatchObject({
      status: 'done',
      count: 4,
      fields: ['id', 'big', 'amount', 'name', 'flag', 'doc', 'note'],
    });
    expect(data.results).toHaveLength(4);
  });

  it('exits 1 with the database message when the query fails, and nothing on stdout', async () => {
    const r = await cli(['query', 'pg', 'select * from qrun_cli_no_such_table'], { env: asAdmin() });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'qrun: query failed: relation "qrun_cli_no_such_table" does not exist (SQLSTATE 42P01, at character 15)\n',
    );
    const json = await cli(['query', 'pg', 'select * from qrun_cli_no_such_table', '--json'], {
      env: asAdmin(),
    });
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'failed', error_details: { sqlstate: '42P01' } });
  });

  it('exits 2 on usage errors', async () => {
    for (const args of [
      ['query', 'pg'], // no SQL (stdin empty)
      ['query'],
      ['query', 'pg', 'select 1', '--format', 'xml'],
      ['query', 'pg', 'select 1', '--bogus'],
      ['query', 'pg', 'select 1', '--max-rows', 'many'],
      ['queries', 'show', 'not-an-id'],
    ]) {
      const r = await cli(args, { env: asAdmin() });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stdout).toBe('');
    }
  });

  it('exits 1 for a connection that does not exist', async () => {
    const r = await cli(['query', 'no-such-connection', 'select 1'], { env: asAdmin() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no connection named "no-such-connection"/);
  });

  it('--no-wait prints the id only; queries show, list and fetch read it later', async () => {
    const r = await cli(['query', 'pg', FIXED_SQL, '--no-wait'], { env: asAdmin() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(UUID_LINE);
    const id = r.stdout.trim();

    const fetched = await cli(['queries', 'fetch', id, '--format', 'csv'], { env: asAdmin() });
    expect(fetched.code, fetched.stderr).toBe(0);
    expectSameAs('fixed.csv.txt', fetched.stdout);

    const show = await cli(['queries', 'show', id, '--json'], { env: asAdmin() });
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({ id, status: 'done', count: 4 });
    const showText = await cli(['queries', 'show', id], { env: asAdmin() });
    expect(showText.stdout).toContain(`id:             ${id}\nstatus:         done\n`);

    const list = await cli(['queries', 'list', '--json', '--limit', '5'], { env: asAdmin() });
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).map((q: any) => q.id)).toContain(id);
    const listText = await cli(['queries', 'list'], { env: asAdmin() });
    expect(listText.stdout).toMatch(new RegExp(`^ ${id} \\| done `, 'm'));
  });

  it('queries cancel stops a running query', async () => {
    const marker = `qrun_cli_cancel_${randomBytes(4).toString('hex')}`;
    const r = await cli(['query', 'pg', `select pg_sleep(60) /* ${marker} */`, '--no-wait'], {
      env: asAdmin(),
    });
    const id = r.stdout.trim();
    await waitUntil(`${marker} in pg_stat_activity`, async () => (await activeStatements(marker)) > 0);
    const cancel = await cli(['queries', 'cancel', id, '--json'], { env: asAdmin() });
    expect(cancel.code, cancel.stderr).toBe(0);
    const end = await waitForQueryEnd(server, { bearer: server.adminKey }, id);
    expect(end.body.data).toMatchObject({ status: 'failed', error: 'canceled' });
    await waitUntil(
      `${marker} to leave pg_stat_activity`,
      async () => (await activeStatements(marker)) === 0,
    );
  });

  it('Ctrl-C cancels the query on the server and exits 130', async () => {
    const marker = `qrun_cli_sigint_${randomBytes(4).toString('hex')}`;
    const run = startCli(['query', 'pg', `select pg_sleep(60) /* ${marker} */`], { env: asAdmin() });
    await waitUntil(`${marker} in pg_stat_activity`, async () => (await activeStatements(marker)) > 0);
    run.child.kill('SIGINT');
    const ended = await run.done;
    expect(ended.code, ended.stderr).toBe(130);
    expect(ended.stdout).toBe('');
    const id = /canceled query ([0-9a-f-]{36})/.exec(ended.stderr)?.[1];
    expect(id, ended.stderr).toBeDefined();
    const end = await waitForQueryEnd(server, { bearer: server.adminKey }, id!);
    expect(end.body.data).toMatchObject({ status: 'failed', error: 'canceled' });
    await waitUntil(
      `${marker} to leave pg_stat_activity`,
      async () => (await activeStatements(marker)) === 0,
    );
  });
});

describe('in a terminal', () => {
  /** Runs the command inside a pseudo-terminal (util-linux script): stdout and stderr are both the terminal. */
  function inTerminal(command: string, env: Record<string, string> = {}) {
    return new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn('script', ['-qfec', command, '/dev/null'], {
        env: baseEnv({ ...asAdmin(), TERM: 'xterm-256color', NO_COLOR: undefined, ...env }),
        cwd: work,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.stdin.end();
      child.on('close', (code) => resolve({ code, output }));
    });
  }
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

  it('shows a live status line with a spinner on stderr, and the data still comes through', async () => {
    const cmd = `${q(process.execPath)} ${q(QRUN_BIN)} query pg ${q('select pg_sleep(1.5), 4242 as answer')}`;
    const r = await inTerminal(cmd);
    expect(r.code, r.output).toBe(0);
    const plain = stripVTControlCharacters(r.output);
    expect(plain).toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] (queued|running) \d+\.\ds/);
    expect(plain).toMatch(/running \d+\.\ds · \d+ rows? · \d+ pages?/);
    expect(plain).toContain('4242');
    expect(plain).toContain('(1 row)');
  });

  it('keeps the progress line off a redirected stdout: the file holds the data only', async () => {
    const out = path.join(work, 'progress.csv');
    const sql = 'select 4242 as answer from pg_sleep(1.5)';
    const cmd = `${q(process.execPath)} ${q(QRUN_BIN)} query pg ${q(sql)} --format csv > ${q(out)}`;
    const r = await inTerminal(cmd);
    expect(r.code, r.output).toBe(0);
    expect(stripVTControlCharacters(r.output)).toMatch(/running \d+\.\ds/);
    expect(readFileSync(out, 'utf8')).toBe('answer\r\n4242\r\n');
  });

  it('refuses to write parquet to a terminal (exit 2)', async () => {
    const r = await inTerminal(
      `${q(process.execPath)} ${q(QRUN_BIN)} query pg 'select 1 as x' --format parquet`,
    );
    expect(r.code).toBe(2);
    expect(r.output).toContain('binary');
    expect(r.output).not.toContain('PAR1');
  });

  it('login asks for the key on a terminal without echoing it', async () => {
    const xdg = mkdtempSync(path.join(tmpdir(), 'qrun-cli-xdg-'));
    try {
      const cmd = `${q(process.execPath)} ${q(QRUN_BIN)} login --url ${q(server.url)}`;
      const child = spawn('script', ['-qfec', cmd, '/dev/null'], {
        env: baseEnv({ XDG_CONFIG_HOME: xdg, TERM: 'xterm-256color' }),
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      const closed = new Promise((resolve) => child.on('close', resolve));
      await waitUntil(
        () => `the key prompt (terminal so far: ${JSON.stringify(output)})`,
        () => output.includes('API key: '),
      );
      child.stdin.write(`${server.adminKey}\r`);
      await waitUntil(
        () => `the login to end (terminal so far: ${JSON.stringify(output)})`,
        () => output.includes('logged in'),
      );
      child.stdin.end();
      expect(await closed).toBe(0);
      expect(output).not.toContain(server.adminKey);
      const file = path.join(xdg, 'qrun', 'config.json');
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ url: server.url, api_key: server.adminKey });
      expect(statSync(file).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(xdg, { recursive: true, force: true });
    }
  });

  it('fits a wide table into the terminal width', async () => {
    const sql = `select repeat('x', 200) as wide, 'short' as s`;
    const cmd = `stty cols 60; ${q(process.execPath)} ${q(QRUN_BIN)} query pg ${q(sql)} --format table`;
    const r = await inTerminal(cmd);
    expect(r.code, r.output).toBe(0);
    // What the terminal shows after the progress line was cleared (the cursor is shown again then).
    const shown = r.output.slice(r.output.lastIndexOf('\u001b[?25h'));
    const lines = stripVTControlCharacters(shown)
      .split(/\r?\n/)
      .filter((l) => l.includes('|') || l.includes('+'));
    expect(lines.length).toBeGreaterThan(2);
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(60);
    expect(r.output).toContain('…');
  });
});

describe('help', () => {
  it('every client command has --help with examples (exit 0)', async () => {
    for (const args of [
      ['login'],
      ['connections'],
      ['connections', 'create'],
      ['connections', 'list'],
      ['query'],
      ['queries'],
      ['queries', 'fetch'],
    ]) {
      const r = await cli([...args, '--help']);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).toMatch(/Examples?:\n {2}\$ qrun /);
    }
  });
});
