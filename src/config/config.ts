import { readFileSync, realpathSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parseEgressRule } from '../net/egress-policy.js';

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
  databasePoolSize: number;
  resultsUrl: string;
  redisUrl: string | undefined;
  /** Namespace of every Redis key and channel, so several qrun installations can share one Redis. */
  redisPrefix: string;
  s3Endpoint: string | undefined;
  s3Region: string;
  s3ForcePathStyle: boolean;
  /** `qrun worker` serves /healthz, /readyz and /metrics on this port when set. */
  workerPort: number | undefined;
  secretKey: string | undefined;
  partnerKey: string | undefined;
  logLevel: string;
  bodyLimitBytes: number;
  maxQueryBytes: number;
  pageRows: number;
  pageBytes: number;
  /** A query whose stored pages would add up to more than this fails (QRUN_MAX_RESULT_BYTES). */
  maxResultBytes: number;
  /** Below this much free space on a file result store's volume, submits get 503 and running queries fail. */
  minFreeBytes: number;
  /** Per DuckDB instance (one per `:memory:` query, one per open database file). */
  duckdbThreads: number;
  duckdbMemoryBytes: number;
  duckdbMaxTempBytes: number;
  resultTtlSeconds: number;
  queryTimeoutSeconds: number;
  workerConcurrency: number;
  connectionConcurrency: number;
  maxQueued: number;
  /** An organization's waiting + running queries beyond which its submits get 429. */
  organizationMaxQueued: number;
  /** An organization's queries running at once, across all workers (Infinity: no limit). */
  organizationConcurrency: number;
  /** Long-polls one API key may hold open at once per process; more answer at once. */
  maxWaitsPerKey: number;
  leaseSeconds: number;
  sweepIntervalSeconds: number;
  /** Finished task rows (with their SQL) are deleted this many days after their result expired. */
  taskRetentionDays: number;
  /** A sweep of the result store for pages that no task owns starts at most this often (0: every sweep). */
  orphanSweepIntervalSeconds: number;
  /** Requests one API key may make per minute, across all api processes sharing Redis (0: no limit). */
  rateLimitPerMinute: number;
  /** Connection tests (test, and the check on create and update) running at once in this process. */
  maxConnectionTests: number;
  /** QRUN_EGRESS_ALLOW (plus the old QRUN_ALLOWED_HOSTS): CIDRs, IPs and host names; empty allows all not denied. */
  egressAllow: string[];
  /** QRUN_EGRESS_DENY (plus the old QRUN_DENIED_HOSTS); deny beats allow. */
  egressDeny: string[];
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

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(name, `expected true or false, got "${raw}"`);
}

function list(env: Env, name: string): string[] {
  const raw = read(env, name);
  if (raw === undefined) return [];
  return raw
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
}

/**
 * An egress list: `name` and its older alias (whose entries merge in), each entry checked to be a CIDR,
 * an IP or a host name, so a typo stops qrun at start instead of silently allowing or denying nothing.
 */
function egressList(env: Env, name: string, alias: string): string[] {
  const entries: string[] = [];
  for (const variable of [name, alias]) {
    for (const entry of list(env, variable)) {
      try {
        parseEgressRule(entry);
      } catch (err) {
        throw new ConfigError(variable, (err as Error).message);
      }
      entries.push(entry);
    }
  }
  return entries;
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

  const redisUrl = read(env, 'QRUN_REDIS_URL', true);
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    throw new ConfigError('QRUN_REDIS_URL', 'must start with redis:// or rediss://');
  }
  const redisPrefix = read(env, 'QRUN_REDIS_PREFIX');
  if (redisPrefix !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(redisPrefix)) {
    throw new ConfigError(
      'QRUN_REDIS_PREFIX',
      'must be 1 to 64 characters of A-Z, a-z, 0-9, "_", "." and "-"',
    );
  }
  const s3Endpoint = read(env, 'QRUN_S3_ENDPOINT');
  if (s3Endpoint !== undefined && !/^https?:\/\//.test(s3Endpoint)) {
    throw new ConfigError('QRUN_S3_ENDPOINT', 'must be an http:// or https:// URL');
  }
  const workerPort =
    read(env, 'QRUN_WORKER_PORT') === undefined ? undefined : int(env, 'QRUN_WORKER_PORT', 0, 0, 65535);

  const secretKey = read(env, 'QRUN_SECRET_KEY', true);
  if (secretKey !== undefined && Buffer.from(secretKey, 'base64').length !== 32) {
    throw new ConfigError(
      'QRUN_SECRET_KEY',
      'must be 32 bytes, base64-encoded (try: openssl rand -base64 32)',
    );
  }

  const partnerKey = read(env, 'QRUN_PARTNER_KEY', true);
  if (partnerKey !== undefined && !/^qrun_p_[A-Za-z0-9_-]{43}$/.test(partnerKey)) {
    throw new ConfigError(
      'QRUN_PARTNER_KEY',
      'must be qrun_p_ followed by 43 base64url characters (try: echo qrun_p_$(openssl rand -base64 32 | tr "+/" "-_" | tr -d =))',
    );
  }

  // Beside ./data, never inside it: SQL on file connections can read what lies under the file root.
  const fileRoot = path.resolve(read(env, 'QRUN_FILE_ROOT') ?? './files');
  checkSeparate(dataDir, fileRoot);

  const MiB = 1024 * 1024;
  const GiB = 1024 * MiB;
  const config: Config = {
    host,
    port: int(env, 'QRUN_PORT', 8080, 0, 65535),
    dataDir,
    fileRoot,
    databaseUrl,
    databasePoolSize: int(env, 'QRUN_DATABASE_POOL_SIZE', 10, 1, 1000),
    resultsUrl,
    redisUrl,
    redisPrefix: read(env, 'QRUN_REDIS_PREFIX') ?? 'qrun',
    s3Endpoint,
    s3Region: read(env, 'QRUN_S3_REGION') ?? 'us-east-1',
    s3ForcePathStyle: bool(env, 'QRUN_S3_FORCE_PATH_STYLE', false),
    workerPort,
    secretKey,
    partnerKey,
    logLevel,
    bodyLimitBytes: int(env, 'QRUN_BODY_LIMIT_BYTES', 2 * MiB, 1024, 1024 * MiB),
    maxQueryBytes: int(env, 'QRUN_MAX_QUERY_BYTES', MiB, 16, 256 * MiB),
    pageRows: int(env, 'QRUN_PAGE_ROWS', 1000, 1, 1_000_000),
    pageBytes: int(env, 'QRUN_PAGE_BYTES', 4 * MiB, 1024, 1024 * MiB),
    maxResultBytes: int(env, 'QRUN_MAX_RESULT_BYTES', 10 * GiB, 1024, Number.MAX_SAFE_INTEGER),
    minFreeBytes: int(env, 'QRUN_MIN_FREE_BYTES', GiB, 0, Number.MAX_SAFE_INTEGER),
    duckdbThreads: int(env, 'QRUN_DUCKDB_THREADS', Math.min(2, availableParallelism()), 1, 1024),
    duckdbMemoryBytes: int(env, 'QRUN_DUCKDB_MEMORY_BYTES', GiB, 16 * MiB, Number.MAX_SAFE_INTEGER),
    duckdbMaxTempBytes: int(env, 'QRUN_DUCKDB_MAX_TEMP_BYTES', 10 * GiB, 0, Number.MAX_SAFE_INTEGER),
    resultTtlSeconds: int(env, 'QRUN_RESULT_TTL_SECONDS', 86_400, 1, 365 * 86_400),
    queryTimeoutSeconds: int(env, 'QRUN_QUERY_TIMEOUT_SECONDS', 3600, 1, 7 * 86_400),
    workerConcurrency: int(env, 'QRUN_WORKER_CONCURRENCY', 4, 1, 1024),
    connectionConcurrency: int(env, 'QRUN_CONNECTION_CONCURRENCY', 2, 1, 1024),
    maxQueued: int(env, 'QRUN_MAX_QUEUED', 1000, 1, 10_000_000),
    organizationMaxQueued: int(env, 'QRUN_ORG_MAX_QUEUED', 100, 1, 10_000_000),
    organizationConcurrency: int(env, 'QRUN_ORG_CONCURRENCY', Number.POSITIVE_INFINITY, 1, 1024),
    maxWaitsPerKey: int(env, 'QRUN_MAX_WAITS_PER_KEY', 20, 0, 100_000),
    leaseSeconds: int(env, 'QRUN_LEASE_SECONDS', 30, 2, 3600),
    sweepIntervalSeconds: int(env, 'QRUN_SWEEP_INTERVAL_SECONDS', 10, 1, 3600),
    // At least a day: a replayed Idempotency-Key (kept 24 h) must never name a deleted task.
    taskRetentionDays: int(env, 'QRUN_TASK_RETENTION_DAYS', 30, 1, 36_500),
    orphanSweepIntervalSeconds: int(env, 'QRUN_ORPHAN_SWEEP_INTERVAL_SECONDS', 600, 0, 7 * 86_400),
    rateLimitPerMinute: int(env, 'QRUN_RATE_LIMIT_PER_MINUTE', 600, 0, 1_000_000_000),
    maxConnectionTests: int(env, 'QRUN_MAX_CONNECTION_TESTS', 4, 1, 1024),
    egressAllow: egressList(env, 'QRUN_EGRESS_ALLOW', 'QRUN_ALLOWED_HOSTS'),
    egressDeny: egressList(env, 'QRUN_EGRESS_DENY', 'QRUN_DENIED_HOSTS'),
  };
  // The body must be able to carry the longest allowed query plus JSON escaping.
  if (config.bodyLimitBytes < config.maxQueryBytes) config.bodyLimitBytes = config.maxQueryBytes * 2;
  return config;
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
