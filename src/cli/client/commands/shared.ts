import { once } from 'node:events';
import { createWriteStream, renameSync, rmSync, type WriteStream } from 'node:fs';
import { InvalidArgumentError, type Command, type CommanderError } from 'commander';
import { stringify } from 'lossless-json';
import { ApiClient } from '../api-client.js';
import { resolveConfig } from '../config-file.js';
import { CliError, EXIT, usageError } from '../exit-codes.js';

export interface JsonOption {
  json?: boolean;
}

/** The client of the configured server (QRUN_URL / QRUN_API_KEY, else the file of `qrun login`). */
export function apiClient(): ApiClient {
  const config = resolveConfig();
  return new ApiClient(config.url, config.api_key);
}

/** A message for the user: stderr, always. */
export function say(message: string): void {
  process.stderr.write(`${message}\n`);
}

/**
 * Client commands exit 2 on a usage error (commander's own is 1) and 0 after --help; every client
 * command gets --json.
 */
export function clientCommand(cmd: Command, options: { json?: boolean } = {}): Command {
  cmd.exitOverride((err: CommanderError) => {
    process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
  });
  if (options.json !== false) cmd.option('--json', "print the API's JSON data (for scripts)");
  return cmd;
}

/** Runs a command's action: a CliError ends it with its message and exit code, anything else with 1. */
export function action<A extends unknown[]>(
  fn: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    // A reader that went away (`qrun query … | head`) is not an error.
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(EXIT.ok);
      throw err;
    });
    try {
      await fn(...args);
      await flushStdout();
    } catch (err) {
      if (err instanceof CliError) {
        say(`qrun: ${err.message}`);
        await flushStdout();
        process.exit(err.exitCode);
      }
      say(`qrun: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(EXIT.failed);
    }
  };
}

/** Resolves once everything written to stdout so far has been handed to the OS (pipes are asynchronous). */
export function flushStdout(): Promise<void> {
  return new Promise((resolve) => process.stdout.write('', () => resolve()));
}

/** One JSON document on stdout, numbers exactly as received. */
export function printJson(value: unknown): void {
  process.stdout.write(`${stringify(value, null, 2) ?? 'null'}\n`);
}

/** Where data goes: stdout, or a file (written beside it and renamed into place when complete). */
export class Sink {
  private readonly stream: NodeJS.WritableStream;
  private readonly temporary: string | undefined;

  constructor(readonly file: string | undefined) {
    if (file === undefined || file === '-') {
      this.stream = process.stdout;
      return;
    }
    this.temporary = `${file}.qrun-${process.pid}.part`;
    this.stream = createWriteStream(this.temporary);
  }

  get isStdout(): boolean {
    return this.stream === process.stdout;
  }

  /** Whether the data goes to a terminal. */
  get isTerminal(): boolean {
    return this.isStdout && Boolean(process.stdout.isTTY);
  }

  async write(chunk: string | Uint8Array): Promise<void> {
    if (chunk.length === 0) return;
    if (!this.stream.write(chunk)) await once(this.stream, 'drain');
  }

  /** Completes the output: a file is moved to its name. */
  async close(): Promise<void> {
    if (this.isStdout) return flushStdout();
    const stream = this.stream as WriteStream;
    stream.end();
    await once(stream, 'finish');
    renameSync(this.temporary!, this.file!);
  }

  /** Drops an incomplete file. */
  discard(): void {
    if (this.temporary) {
      (this.stream as WriteStream).destroy();
      rmSync(this.temporary, { force: true });
    }
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

export interface ConnectionData {
  id: string;
  name: string;
  type: { id: string; name: string } | string;
  [key: string]: unknown;
}

/** A connection by id, or by its exact name (an error when no connection or several have that name). */
export async function resolveConnection(api: ApiClient, ref: string): Promise<ConnectionData> {
  if (isUuid(ref)) return api.data<ConnectionData>('GET', `/api/connections/${ref}`);
  const all = await api.data<ConnectionData[]>('GET', '/api/connections');
  const matches = all.filter((c) => c.name === ref);
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new CliError(`no connection named "${ref}"`, EXIT.failed);
  throw usageError(
    `${matches.length} connections are named "${ref}": give the id (${matches.map((c) => c.id).join(', ')})`,
  );
}

/** A whole positive number option. */
export function positiveInt(name: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
      throw new InvalidArgumentError(`${name} must be a whole number above 0.`);
    }
    return Number(value);
  };
}
