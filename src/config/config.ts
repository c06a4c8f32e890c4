import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * All settings come from QRUN_* environment variables, validated here once at start-up.
 * A bad value stops the process with one line naming the variable (see ConfigError).
 * Secrets may also come from `<NAME>_FILE`, so they need not sit in the environment.
 */
export interface Config {
  host: string;
  port: number;
  dataDir: string;
  fileRoot: string;
  databaseUrl: string;
  resultsUrl: string;
  secretKey: string | undefined;
  partnerKey: string | undefined;
  logLevel: string;
  bodyLimitBytes: number;
  maxQueryBytes: number;
  pageRows: number;
  pageBytes: number;
  resultTtlSeconds: number;
  queryTimeoutSeconds: number;
  workerConcurrency: number;
  connectionConcurrency: number;
  maxQueued: number;
  leaseSeconds: number;
  sweepIntervalSeconds: number;
  allowedHosts: string[];
  deniedHosts: string[];
}

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

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `expected a whole number, got "${raw}"`);
  const value = Number(raw.trim());
  if (value < min || value > max)
    throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function list(env: Env, name: string): string[] {
  const raw = read(env, name);
  if (raw === undefined) return [];
  return raw
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
}

export function loadConfig(env: Env = process.env): Config {
  const dataDir = path.resolve(read(env, 'QRUN_DATA_DIR') ?? './data');
  const host = read(env, 'QRUN_HOST') ?? '127.0.0.1';
  const logLevel = read(env, 'QRUN_LOG_LEVEL') ?? 'info';
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!levels.includes(logLevel))
    throw new ConfigError('QRUN_LOG_LEVEL', `must be one of ${levels.join(', ')}`);

  const databaseUrl = read(env, 'QRUN_DATABASE_URL') ?? `sqlite:${path.join(dataDir, 'qrun.sqlite')}`;
  if (!/^(sqlite:|postgres(ql)?:\/\/)/.test(databaseUrl)) {
    throw new ConfigError('QRUN_DATABASE_URL', 'must start with sqlite: or postgres://');
  }
  const resultsUrl = read(env, 'QRUN_RESULTS_URL') ?? `file:${path.join(dataDir, 'results')}`;
  if (!/^(file:|s3:\/\/)/.test(resultsUrl)) {
    throw new ConfigError('QRUN_RESULTS_URL', 'must start with file: or s3://');
  }

  const secretKey = read(env, 'QRUN_SECRET_KEY', true);
  if (secretKey !== undefined && Buffer.from(secretKey, 'base64').length !== 32) {
    throw new ConfigError(
      'QRUN_SECRET_KEY',
      'must be 32 bytes, base64-encoded (try: openssl rand -base64 32)',
    );
  }

  const MiB = 1024 * 1024;
  const config: Config = {
    host,
    port: int(env, 'QRUN_PORT', 8080, 0, 65535),
    dataDir,
    fileRoot: path.resolve(read(env, 'QRUN_FILE_ROOT') ?? path.join(dataDir, 'files')),
    databaseUrl,
    resultsUrl,
    secretKey,
    partnerKey: read(env, 'QRUN_PARTNER_KEY', true),
    logLevel,
    bodyLimitBytes: int(env, 'QRUN_BODY_LIMIT_BYTES', 2 * MiB, 1024, 1024 * MiB),
    maxQueryBytes: int(env, 'QRUN_MAX_QUERY_BYTES', MiB, 16, 256 * MiB),
    pageRows: int(env, 'QRUN_PAGE_ROWS', 1000, 1, 1_000_000),
    pageBytes: int(env, 'QRUN_PAGE_BYTES', 4 * MiB, 1024, 1024 * MiB),
    resultTtlSeconds: int(env, 'QRUN_RESULT_TTL_SECONDS', 86_400, 1, 365 * 86_400),
    queryTimeoutSeconds: int(env, 'QRUN_QUERY_TIMEOUT_SECONDS', 3600, 1, 7 * 86_400),
    workerConcurrency: int(env, 'QRUN_WORKER_CONCURRENCY', 4, 1, 1024),
    connectionConcurrency: int(env, 'QRUN_CONNECTION_CONCURRENCY', 2, 1, 1024),
    maxQueued: int(env, 'QRUN_MAX_QUEUED', 1000, 1, 10_000_000),
    leaseSeconds: int(env, 'QRUN_LEASE_SECONDS', 30, 2, 3600),
    sweepIntervalSeconds: int(env, 'QRUN_SWEEP_INTERVAL_SECONDS', 10, 1, 3600),
    allowedHosts: list(env, 'QRUN_ALLOWED_HOSTS'),
    deniedHosts: list(env, 'QRUN_DENIED_HOSTS'),
  };
  // The body must be able to carry the longest allowed query plus JSON escaping.
  if (config.bodyLimitBytes < config.maxQueryBytes) config.bodyLimitBytes = config.maxQueryBytes * 2;
  return config;
}
