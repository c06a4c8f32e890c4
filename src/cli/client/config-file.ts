import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { CliError, EXIT } from './exit-codes.js';

/** What `qrun login` stores: where the server is and the key to use. */
export interface ClientConfig {
  url: string;
  api_key: string;
}

/** `$XDG_CONFIG_HOME/qrun/config.json`, or `~/.config/qrun/config.json`. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : undefined;
  return path.join(base ?? path.join(env.HOME || homedir(), '.config'), 'qrun', 'config.json');
}

/** The stored configuration, or undefined when there is none. A broken file is an error naming it. */
export function readConfigFile(file = configPath()): Partial<ClientConfig> | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, EXIT.failed);
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null) throw new Error('not a JSON object');
    const { url, api_key } = parsed as Record<string, unknown>;
    return {
      url: typeof url === 'string' ? url : undefined,
      api_key: typeof api_key === 'string' ? api_key : undefined,
    };
  } catch (err) {
    throw new CliError(`${file} is not valid (${(err as Error).message}); run qrun login again`, EXIT.failed);
  }
}

/** Writes the file with mode 0600 in a directory with mode 0700, atomically (a temporary file renamed). */
export function writeConfigFile(config: ClientConfig, file = configPath()): void {
  const dir = path.dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, file);
}

/** Removes the file; true when there was one. */
export function removeConfigFile(file = configPath()): boolean {
  try {
    rmSync(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Where the server is and which key to send: QRUN_URL and QRUN_API_KEY win over the file. */
export function resolveConfig(env: NodeJS.ProcessEnv = process.env): ClientConfig {
  const stored = readConfigFile(configPath(env));
  const url = env.QRUN_URL || stored?.url;
  const apiKey = env.QRUN_API_KEY || stored?.api_key;
  if (!url || !apiKey) {
    throw new CliError(
      `not logged in: run \`qrun login\` (or set QRUN_URL and QRUN_API_KEY)`,
      EXIT.unreachable,
    );
  }
  return { url, api_key: apiKey };
}
