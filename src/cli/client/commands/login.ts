import { createInterface } from 'node:readline/promises';
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { ApiClient } from '../api-client.js';
import { configPath, removeConfigFile, writeConfigFile } from '../config-file.js';
import { usageError } from '../exit-codes.js';
import { action, clientCommand, printJson, say, type JsonOption } from './shared.js';

const DEFAULT_URL = 'http://127.0.0.1:8080';

/** Asks on the terminal (stderr); a hidden answer (the key) is not echoed. */
async function ask(question: string, hidden = false): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  try {
    const answer = rl.question(question);
    muted = hidden;
    return (await answer).trim();
  } finally {
    rl.close();
    if (hidden) process.stderr.write('\n');
  }
}

function normalizeUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usageError(`"${url}" is not a URL (e.g. ${DEFAULT_URL})`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw usageError(`"${url}" is not an http:// or https:// URL`);
  }
  return parsed.toString().replace(/\/+$/, '');
}

async function login(flags: JsonOption & { url?: string; apiKey?: string }): Promise<void> {
  const interactive = Boolean(process.stdin.isTTY);
  let url = flags.url ?? process.env.QRUN_URL;
  if (url === undefined)
    url = interactive ? (await ask(`qrun server URL [${DEFAULT_URL}]: `)) || DEFAULT_URL : DEFAULT_URL;
  let apiKey = flags.apiKey ?? process.env.QRUN_API_KEY;
  if (apiKey === undefined && interactive) apiKey = await ask('API key: ', true);
  if (!apiKey) throw usageError('no API key: give --api-key (or set QRUN_API_KEY)');
  url = normalizeUrl(url);

  const me = await new ApiClient(url, apiKey).data<Record<string, unknown>>('GET', '/api/me');
  const file = configPath();
  writeConfigFile({ url, api_key: apiKey }, file);
  if (flags.json) return printJson(me);
  const who =
    typeof me.email === 'string' ? me.email : me.is_partner ? 'the partner key' : 'the organization key';
  const org = typeof me.organization_name === 'string' ? ` in ${me.organization_name}` : '';
  say(`qrun: logged in to ${url} as ${who}${org} (saved in ${file})`);
}

async function logout(flags: JsonOption): Promise<void> {
  const file = configPath();
  const removed = removeConfigFile(file);
  if (flags.json) return printJson({ removed, file });
  say(removed ? `qrun: logged out (removed ${file})` : `qrun: not logged in (no ${file})`);
}

export function registerLogin(program: Command): void {
  clientCommand(
    program
      .command('login')
      .description('Check a server URL and API key with GET /api/me and save them for the other commands.')
      .option('--url <url>', `the qrun server (default ${DEFAULT_URL}; asked when stdin is a terminal)`)
      .option('--api-key <key>', 'a user or organization key (asked when stdin is a terminal)'),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ qrun login --url http://127.0.0.1:8080 --api-key "$(cat data/admin-key)"
  $ qrun login          # asks for both

The file is $XDG_CONFIG_HOME/qrun/config.json (default ~/.config/qrun/config.json), mode 0600.
QRUN_URL and QRUN_API_KEY, when set, win over it for every command.`,
    )
    .action(action(login));
  clientCommand(program.command('logout').description('Remove the saved URL and key.'))
    .addHelpText('after', '\nExample:\n  $ qrun logout')
    .action(action(logout));
}
