import { readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import type { Static } from 'typebox';
import { Value } from 'typebox/value';
import { settingEntries, type ConfigSchema, type Earlier, type Setting } from './settings.js';

/**
 * All settings come from QRUN_* environment variables, validated here once at start-up. What they are
 * (name, type, default, checks, docs) is declared in settings.ts; this file reads them.
 * A bad value stops the process with one line naming the variable (see ConfigError).
 * Secrets may also come from `<NAME>_FILE`, so they need not sit in the environment.
 */
export type Config = Static<typeof ConfigSchema>;

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** The settings from `env` (and only from it, apart from files named by `*_FILE` and the CPU count). */
export function loadConfig(env: Env = process.env): Config {
  const loaded: Record<string, unknown> = {};
  for (const [field, setting] of settingEntries()) loaded[field] = loadSetting(env, setting, loaded);
  const config = loaded as Config;

  // Rules across settings.
  // The body must be able to carry the longest allowed query plus JSON escaping.
  if (config.bodyLimitBytes < config.maxQueryBytes) config.bodyLimitBytes = config.maxQueryBytes * 2;
  checkSeparate(config.dataDir, config.fileRoot);
  return config;
}

/** One setting: its variable converted to the setting's type and checked, or else its default. */
function loadSetting(env: Env, setting: Setting, earlier: Earlier): unknown {
  if (setting.type === 'array') return loadList(env, setting);
  const raw = read(env, setting.env, setting.secret);
  let value: unknown;
  if (raw === undefined) {
    // Defaults are not checked: the unlimited default of QRUN_ORG_CONCURRENCY is outside its range.
    value = setting.defaultFrom !== undefined ? setting.defaultFrom(earlier) : setting.default;
  } else {
    value = convert(setting, raw);
    check(setting, setting.env, value);
  }
  return setting.directory === true ? path.resolve(value as string) : value;
}

/** A list's entries: its own variable's, then its older alias's, each checked under the name it came from. */
function loadList(env: Env, setting: Setting): string[] {
  const entries: string[] = [];
  for (const variable of setting.alias === undefined ? [setting.env] : [setting.env, setting.alias]) {
    const raw = read(env, variable, setting.secret);
    if (raw === undefined) continue;
    const list = raw
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== '');
    check(setting, variable, list);
    entries.push(...list);
  }
  return entries;
}

/** The variable's text, or undefined when unset or empty; for secrets, else the file named by `<name>_FILE`. */
function read(env: Env, name: string, secret = false): string | undefined {
  const direct = env[name];
  if (secret) {
    const file = env[`${name}_FILE`];
    if (file !== undefined && file !== '') {
      if (direct !== undefined && direct !== '') {
        throw new ConfigError(name, `set either ${name} or ${name}_FILE, not both`);
      }
      try {
        return readFileSync(file, 'utf8').trim();
      } catch (err) {
        throw new ConfigError(`${name}_FILE`, `cannot read ${file} (${(err as NodeJS.ErrnoException).code})`);
      }
    }
  }
  return direct === '' ? undefined : direct;
}

/** Text to the setting's type (strings stay as given). */
function convert(setting: Setting, raw: string): unknown {
  const trimmed = raw.trim();
  switch (setting.type) {
    case 'integer':
      if (!/^\d+$/.test(trimmed)) throw new ConfigError(setting.env, `expected a whole number, got "${raw}"`);
      return Number(trimmed);
    case 'boolean':
      if (['1', 'true', 'yes', 'on'].includes(trimmed.toLowerCase())) return true;
      if (['0', 'false', 'no', 'off'].includes(trimmed.toLowerCase())) return false;
      throw new ConfigError(setting.env, `expected true or false, got "${raw}"`);
    default:
      return raw;
  }
}

/** Checks `value` against the setting's schema; the first failure becomes the ConfigError's one line. */
function check(setting: Setting, variable: string, value: unknown): void {
  const [error] = Value.Errors(setting, value);
  if (error === undefined) return;
  switch (error.keyword) {
    case 'minimum':
    case 'maximum':
      throw new ConfigError(
        variable,
        `must be between ${setting.minimum} and ${setting.maximum}, got ${value}`,
      );
    case 'enum':
      throw new ConfigError(variable, `must be one of ${setting.enum?.join(', ')}`);
    case 'pattern':
      throw new ConfigError(variable, setting.problem ?? error.message);
    default:
      // A refine() check's own sentence (settings.ts), or TypeBox's for a keyword not handled above.
      throw new ConfigError(variable, error.message);
  }
}

/**
 * The data directory holds qrun's own secrets (secret-key, partner-key, the metadata store) and the
 * file root is open to every organization's SQL, so neither may contain the other. Compared as they
 * are and with symlinks resolved as far as the paths exist yet.
 */
function checkSeparate(dataDir: string, fileRoot: string): void {
  const overlap = (a: string, b: string) => isWithin(a, b) || isWithin(b, a);
  if (overlap(dataDir, fileRoot) || overlap(realAsFarAsExists(dataDir), realAsFarAsExists(fileRoot))) {
    throw new ConfigError(
      'QRUN_FILE_ROOT',
      `the file root (${fileRoot}) and the data directory QRUN_DATA_DIR (${dataDir}) overlap, and SQL on ` +
        'SQLite and DuckDB connections could then reach qrun’s own keys and metadata; give them two separate ' +
        'directories, neither inside the other (the defaults are ./data and ./files)',
    );
  }
}

/** True when `inner` is `outer` itself or lies below it (both absolute). */
function isWithin(inner: string, outer: string): boolean {
  const rel = path.relative(outer, inner);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** `p` with its longest existing ancestor's symlinks resolved (the rest may not exist yet). */
function realAsFarAsExists(p: string): string {
  let existing = p;
  const missing: string[] = [];
  for (;;) {
    try {
      return path.join(realpathSync(existing), ...missing);
    } catch {
      const parent = path.dirname(existing);
      if (parent === existing) return p;
      missing.unshift(path.basename(existing));
      existing = parent;
    }
  }
}

export type Role = 'start' | 'api' | 'worker';

/**
 * Refuses deployments that cannot work across processes, with a sentence that says why. Called once,
 * where the CLI knows which role this process plays.
 */
export function checkDeployment(config: Config, role: Role): void {
  if (role === 'start') return;
  if (config.databaseUrl.startsWith('sqlite:')) {
    throw new ConfigError(
      'QRUN_DATABASE_URL',
      `qrun ${role} runs beside other qrun processes and they must share one metadata store, but a SQLite file ` +
        'belongs to a single process; use postgres://… (or run everything in one process with qrun start)',
    );
  }
  if (config.redisUrl === undefined) {
    throw new ConfigError(
      'QRUN_REDIS_URL',
      `qrun ${role} hands queries to other processes through Redis; set QRUN_REDIS_URL (or use qrun start)`,
    );
  }
  if (role === 'api' && config.partnerKey === undefined) {
    throw new ConfigError(
      'QRUN_PARTNER_KEY',
      'qrun api runs beside other api processes, and the partner key is the one every process accepts (a start ' +
        'with another key revokes the old one); set QRUN_PARTNER_KEY or QRUN_PARTNER_KEY_FILE',
    );
  }
  if (config.secretKey === undefined) {
    throw new ConfigError(
      'QRUN_SECRET_KEY',
      `qrun ${role} must open connection secrets sealed by other processes, so every process needs the same ` +
        'key; set QRUN_SECRET_KEY or QRUN_SECRET_KEY_FILE (a generated key file would differ per machine)',
    );
  }
}
