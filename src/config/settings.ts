import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Type, type Static, type TSchema } from 'typebox';
import { parseEgressRule } from '../net/egress-policy.js';

/**
 * Every setting qrun reads, in one place: `ConfigSchema` below, one TypeBox schema per setting. From it come
 * - the type `Config` (config.ts: `Static<typeof ConfigSchema>`, one field per property),
 * - the defaults and the checks that `loadConfig` applies (config.ts), each failure one line
 *   `qrun: <VARIABLE>: <problem>`,
 * - the settings table of docs/OPERATIONS.md (docs.ts, `npm run docs:config`; a unit test fails when the
 *   file is not what it would write).
 *
 * To add a setting, add one property below with the builder of its kind (`whole`, `text`, `flag`,
 * `directory`, `list`), giving
 * - `env`: the variable, `description`: the table's "meaning" column (Markdown),
 * - `default`, or `defaultFrom` (computed from the settings above it, with `docDefault` for the table),
 *   or wrap it in `Type.Optional(…)` when unset means "off" (the field is then `T | undefined`),
 * - the checks: `minimum`/`maximum` for whole numbers, `pattern` + `problem` or `enum` for text, or
 *   `refine(schema, value => problem or undefined)` when code must decide,
 * - `secret: true` when it may also come from `<env>_FILE`.
 * Then run `npm run docs:config`. The property's name is the field the code reads (`config.pageRows`).
 * Rules across settings (one adjusting or refusing another) live in `loadConfig`.
 */

/** What every setting says besides its type: where it is read from and how the docs show it. */
// A type, not an interface, so that it fits TypeBox's options (which take any extra keyword).
export type SettingKeywords = {
  /** The environment variable. */
  env: `QRUN_${string}`;
  /** The "meaning" column of the settings table (Markdown). */
  description: string;
  /** The "default" column, for a default that its value alone does not explain (computed, unlimited, unset). */
  docDefault?: string;
  /** Also read from a file named by `<env>_FILE` (trimmed); setting both is an error. */
  secret?: boolean;
  /** The default, computed at load from the settings above this one (ConfigSchema is read top to bottom). */
  defaultFrom?: (earlier: Earlier) => unknown;
};

/** The settings loaded so far, by field name. */
export type Earlier = Readonly<Record<string, unknown>>;

/** A property of ConfigSchema as loadConfig and docs.ts read it: the schema's keywords and ours. */
export type Setting = SettingKeywords & {
  type: 'integer' | 'string' | 'boolean' | 'array';
  default?: unknown;
  minimum?: number;
  maximum?: number;
  enum?: readonly string[];
  /** The sentence for a value that does not match `pattern`. */
  problem?: string;
  /** A path, resolved against the working directory (the default too). */
  directory?: boolean;
  /** A list's older variable, still read: its entries are added after the list's own. */
  alias?: `QRUN_${string}`;
};

/** A whole number from `minimum` to `maximum`; anything but digits is refused before the range is checked. */
function whole(options: SettingKeywords & { default?: number; minimum: number; maximum: number }) {
  return Type.Integer(options);
}

/** Text, taken as it is given (not trimmed). */
function text(
  options: SettingKeywords & {
    default?: string;
    enum?: readonly string[];
    pattern?: RegExp;
    problem?: string;
  },
) {
  if (options.pattern !== undefined && options.problem === undefined) {
    throw new Error(`${options.env}: a pattern needs the problem sentence shown when a value does not match`);
  }
  return Type.String(options);
}

/** true (`1`, `true`, `yes`, `on`) or false (`0`, `false`, `no`, `off`), in any case. */
function flag(options: SettingKeywords & { default: boolean }) {
  return Type.Boolean(options);
}

/** A directory, resolved against the working directory. */
function directory(options: SettingKeywords & { default: string }) {
  return Type.String({ ...options, directory: true });
}

/** Comma-separated entries, trimmed and lowercased, empty ones dropped; each is checked against `entry`. */
function list<T extends TSchema>(entry: T, options: SettingKeywords & { alias?: `QRUN_${string}` }) {
  return Type.Array(entry, { ...options, default: [] });
}

/** A check written as code: `problem(value)` is the sentence that refuses the value, or undefined. */
function refine<T extends TSchema>(schema: T, problem: (value: Static<T>) => string | undefined) {
  return Type.Refine(
    schema,
    (value: Static<T>) => problem(value) === undefined,
    (value: Static<T>) => problem(value) ?? '',
  );
}

/** One QRUN_EGRESS_* entry: a CIDR, an IP or a host name, so a typo stops qrun instead of allowing or denying nothing. */
const egressEntry = refine(Type.String(), (entry) => {
  try {
    parseEgressRule(entry);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
});

/** For defaults inside the data directory (QRUN_DATA_DIR comes first in ConfigSchema). */
function inDataDir(earlier: Earlier, name: string): string {
  if (typeof earlier.dataDir !== 'string')
    throw new Error('ConfigSchema: dataDir must come before its users');
  return path.join(earlier.dataDir, name);
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const MAX = Number.MAX_SAFE_INTEGER;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Every setting, in the order of the docs table. */
export const ConfigSchema = Type.Object({
  // Where qrun listens and keeps its data.
  host: text({ env: 'QRUN_HOST', default: '127.0.0.1', description: 'address the API listens on' }),
  port: whole({
    env: 'QRUN_PORT',
    default: 8080,
    minimum: 0,
    maximum: 65535,
    description: 'port the API listens on (`0` picks a free one)',
  }),
  dataDir: directory({
    env: 'QRUN_DATA_DIR',
    default: './data',
    description: 'metadata database, result files, generated keys',
  }),
  // Beside ./data, never inside it (loadConfig refuses an overlap): SQL on file connections can read what
  // lies under the file root.
  fileRoot: directory({
    env: 'QRUN_FILE_ROOT',
    default: './files',
    description:
      'one directory per organization, `<organization id>/`: all that its SQLite and DuckDB connections open',
  }),
  databaseUrl: text({
    env: 'QRUN_DATABASE_URL',
    defaultFrom: (earlier) => `sqlite:${inDataDir(earlier, 'qrun.sqlite')}`,
    docDefault: '`sqlite:$QRUN_DATA_DIR/qrun.sqlite`',
    pattern: /^(sqlite:|postgres(ql)?:\/\/)/,
    problem: 'must start with sqlite: or postgres://',
    description: 'metadata store: `sqlite:<file>` or `postgres://…`',
  }),
  databasePoolSize: whole({
    env: 'QRUN_DATABASE_POOL_SIZE',
    default: 10,
    minimum: 1,
    maximum: 1000,
    description: 'PostgreSQL metadata connections per process',
  }),
  resultsUrl: text({
    env: 'QRUN_RESULTS_URL',
    defaultFrom: (earlier) => `file:${inDataDir(earlier, 'results')}`,
    docDefault: '`file:$QRUN_DATA_DIR/results`',
    pattern: /^(file:|s3:\/\/)/,
    problem: 'must start with file: or s3://',
    description: 'where result pages are stored: `file:<dir>` or `s3://bucket/prefix`',
  }),
  s3Endpoint: Type.Optional(
    text({
      env: 'QRUN_S3_ENDPOINT',
      docDefault: '(AWS)',
      pattern: /^https?:\/\//,
      problem: 'must be an http:// or https:// URL',
      description: "S3-compatible endpoint URL, e.g. MinIO's",
    }),
  ),
  s3Region: text({ env: 'QRUN_S3_REGION', default: 'us-east-1', description: 'S3 region' }),
  s3ForcePathStyle: flag({
    env: 'QRUN_S3_FORCE_PATH_STYLE',
    default: false,
    description: '`true` for endpoints that need path-style URLs (MinIO, s3rver)',
  }),

  // Scale-out: Redis, the shared keys.
  redisUrl: Type.Optional(
    text({
      env: 'QRUN_REDIS_URL',
      secret: true,
      docDefault: '(unset: in-process)',
      pattern: /^rediss?:\/\//,
      problem: 'must start with redis:// or rediss://',
      description:
        'Redis for dispatch (BullMQ) and wake-ups (pub/sub); required by `qrun api` and `qrun worker`',
    }),
  ),
  redisPrefix: text({
    env: 'QRUN_REDIS_PREFIX',
    default: 'qrun',
    pattern: /^[A-Za-z0-9_.-]{1,64}$/,
    problem: 'must be 1 to 64 characters of A-Z, a-z, 0-9, "_", "." and "-"',
    description: "namespace of qrun's Redis keys and channels, for a shared Redis",
  }),
  workerPort: Type.Optional(
    whole({
      env: 'QRUN_WORKER_PORT',
      minimum: 0,
      maximum: 65535,
      description: '`qrun worker` serves `/healthz`, `/readyz` and `/metrics` here',
    }),
  ),
  secretKey: Type.Optional(
    refine(
      text({
        env: 'QRUN_SECRET_KEY',
        secret: true,
        docDefault:
          'generated into `$QRUN_DATA_DIR/secret-key` (0600) by `qrun start`; required by `qrun api` and `qrun worker`',
        description:
          '32 bytes, base64: seals connection secrets (AES-256-GCM) and keys page tokens; every process must share it',
      }),
      (key) =>
        Buffer.from(key, 'base64').length === 32
          ? undefined
          : 'must be 32 bytes, base64-encoded (try: openssl rand -base64 32)',
    ),
  ),
  partnerKey: Type.Optional(
    text({
      env: 'QRUN_PARTNER_KEY',
      secret: true,
      docDefault: 'generated into `$QRUN_DATA_DIR/partner-key` (0600)',
      pattern: /^qrun_p_[A-Za-z0-9_-]{43}$/,
      problem:
        'must be qrun_p_ followed by 43 base64url characters (try: echo qrun_p_$(openssl rand -base64 32 | tr "+/" "-_" | tr -d =))',
      description: "the instance operator's key; required by `qrun api`",
    }),
  ),
  logLevel: text({
    env: 'QRUN_LOG_LEVEL',
    default: 'info',
    enum: LOG_LEVELS,
    description: LOG_LEVELS.map((level) => `\`${level}\``).join(', '),
  }),

  // Sizes of requests and results.
  bodyLimitBytes: whole({
    env: 'QRUN_BODY_LIMIT_BYTES',
    default: 2 * MiB,
    minimum: KiB,
    maximum: 1024 * MiB,
    description: 'largest request body (413 above it); when below `QRUN_MAX_QUERY_BYTES`, twice that instead',
  }),
  maxQueryBytes: whole({
    env: 'QRUN_MAX_QUERY_BYTES',
    default: MiB,
    minimum: 16,
    maximum: 256 * MiB,
    description: 'longest SQL text (413 above it)',
  }),
  pageRows: whole({
    env: 'QRUN_PAGE_ROWS',
    default: 1000,
    minimum: 1,
    maximum: 1_000_000,
    description: 'rows per result page, unless a submit asks for `page_rows`',
  }),
  pageRowsMax: whole({
    env: 'QRUN_PAGE_ROWS_MAX',
    default: 10_000,
    minimum: 1,
    maximum: 1_000_000,
    description:
      'largest `page_rows` a submit may ask for (400 `invalid_page_rows` above it); pages still hold at most `QRUN_PAGE_BYTES`',
  }),
  pageBytes: whole({
    env: 'QRUN_PAGE_BYTES',
    default: 4 * MiB,
    minimum: KiB,
    maximum: 1024 * MiB,
    description: 'bytes of JSON per result page',
  }),

  // Queries, workers and the sweeper.
  resultTtlSeconds: whole({
    env: 'QRUN_RESULT_TTL_SECONDS',
    default: 86_400,
    minimum: 1,
    maximum: 365 * 86_400,
    description: 'how long results are kept after a query ends',
  }),
  queryTimeoutSeconds: whole({
    env: 'QRUN_QUERY_TIMEOUT_SECONDS',
    default: 3600,
    minimum: 1,
    maximum: 7 * 86_400,
    description: "default and upper limit of a query's run time",
  }),
  workerConcurrency: whole({
    env: 'QRUN_WORKER_CONCURRENCY',
    default: 4,
    minimum: 1,
    maximum: 1024,
    description: 'queries one worker runs at once',
  }),
  connectionConcurrency: whole({
    env: 'QRUN_CONNECTION_CONCURRENCY',
    default: 2,
    minimum: 1,
    maximum: 1024,
    description: 'queries one connection runs at once',
  }),
  sessionIdleSeconds: whole({
    env: 'QRUN_SESSION_IDLE_SECONDS',
    default: 30,
    minimum: 0,
    maximum: 3600,
    description:
      "how long a finished query's PostgreSQL session or SQLite process is kept for the next query on its connection (0: never)",
  }),
  maxQueued: whole({
    env: 'QRUN_MAX_QUEUED',
    default: 1000,
    minimum: 1,
    maximum: 10_000_000,
    description: 'waiting queries before submits get 503',
  }),
  leaseSeconds: whole({
    env: 'QRUN_LEASE_SECONDS',
    default: 30,
    minimum: 2,
    maximum: 3600,
    description: "how long a running query's lease lasts without a heartbeat",
  }),
  sweepIntervalSeconds: whole({
    env: 'QRUN_SWEEP_INTERVAL_SECONDS',
    default: 10,
    minimum: 1,
    maximum: 3600,
    description: 'how often expired leases and results are swept',
  }),

  // Limits that keep one caller from taking the service from everyone else.
  organizationMaxQueued: whole({
    env: 'QRUN_ORG_MAX_QUEUED',
    default: 100,
    minimum: 1,
    maximum: 10_000_000,
    description:
      "an organization's waiting + running queries beyond which its submits get 429 `too_many_queries`",
  }),
  organizationConcurrency: whole({
    env: 'QRUN_ORG_CONCURRENCY',
    default: Number.POSITIVE_INFINITY, // no limit unless set (a set value must be 1 to 1024)
    docDefault: '(unlimited)',
    minimum: 1,
    maximum: 1024,
    description: "an organization's queries running at once, across all workers",
  }),
  rateLimitPerMinute: whole({
    env: 'QRUN_RATE_LIMIT_PER_MINUTE',
    default: 600,
    minimum: 0,
    maximum: 1_000_000_000,
    description:
      'requests per API key per minute, across all api processes sharing Redis (429 `rate_limited` beyond; `0`: off)',
  }),
  maxConnectionTests: whole({
    env: 'QRUN_MAX_CONNECTION_TESTS',
    default: 4,
    minimum: 1,
    maximum: 1024,
    description: 'connection tests running at once per process (429 `too_many_connection_tests` beyond)',
  }),
  maxWaitsPerKey: whole({
    env: 'QRUN_MAX_WAITS_PER_KEY',
    default: 20,
    minimum: 0,
    maximum: 100_000,
    description:
      'long-polls and event streams (`/events`) one key may hold open per process; more answer at once',
  }),
  sseHeartbeatSeconds: whole({
    env: 'QRUN_SSE_HEARTBEAT_SECONDS',
    default: 15,
    minimum: 1,
    maximum: 3600,
    description: 'an event stream (`GET /api/queries/{id}/events`) sends a `: ping` comment this often',
  }),
  maxResultBytes: whole({
    env: 'QRUN_MAX_RESULT_BYTES',
    default: 10 * GiB,
    minimum: KiB,
    maximum: MAX,
    description: 'bytes of JSON pages one result may store; a larger one fails',
  }),
  minFreeBytes: whole({
    env: 'QRUN_MIN_FREE_BYTES',
    default: GiB,
    minimum: 0,
    maximum: MAX,
    description:
      "free space kept on a `file:` result store's volume (503 `storage_full` below it; `0`: no check)",
  }),
  // Per DuckDB instance (one per `:memory:` query, one per open database file).
  duckdbThreads: whole({
    env: 'QRUN_DUCKDB_THREADS',
    defaultFrom: () => Math.min(2, availableParallelism()),
    docDefault: '2, or the CPU count if smaller',
    minimum: 1,
    maximum: 1024,
    description: 'threads per DuckDB instance',
  }),
  duckdbMemoryBytes: whole({
    env: 'QRUN_DUCKDB_MEMORY_BYTES',
    default: GiB,
    minimum: 16 * MiB,
    maximum: MAX,
    description: 'DuckDB `memory_limit` per instance',
  }),
  duckdbMaxTempBytes: whole({
    env: 'QRUN_DUCKDB_MAX_TEMP_BYTES',
    default: 10 * GiB,
    minimum: 0,
    maximum: MAX,
    description: 'DuckDB `max_temp_directory_size` per instance',
  }),
  // At least a day: a replayed Idempotency-Key (kept 24 h) must never name a deleted task.
  taskRetentionDays: whole({
    env: 'QRUN_TASK_RETENTION_DAYS',
    default: 30,
    minimum: 1,
    maximum: 36_500,
    description: "days after its result expired that a query's row (SQL, parameters) is deleted (at least 1)",
  }),
  orphanSweepIntervalSeconds: whole({
    env: 'QRUN_ORPHAN_SWEEP_INTERVAL_SECONDS',
    default: 600,
    minimum: 0,
    maximum: 7 * 86_400,
    description: 'how often a pass over the result store for pages no query owns starts (`0`: every sweep)',
  }),

  // Where tenant connections may go (src/net/egress-policy.ts).
  egressAllow: list(egressEntry, {
    env: 'QRUN_EGRESS_ALLOW',
    alias: 'QRUN_ALLOWED_HOSTS',
    docDefault: '(everything not denied)',
    description:
      'CIDRs, IPs and host names (comma-separated) tenant connections may reach; see "Network destinations"',
  }),
  egressDeny: list(egressEntry, {
    env: 'QRUN_EGRESS_DENY',
    alias: 'QRUN_DENIED_HOSTS',
    docDefault: '(only the fixed list)',
    description: 'CIDRs, IPs and host names tenant connections may not reach; beats the allow list',
  }),
});

/** The settings with their field names, in ConfigSchema's order. */
export function settingEntries(): [field: string, setting: Setting][] {
  // The builders above put these keywords on every property; TypeBox's own types do not list them.
  return Object.entries(ConfigSchema.properties) as unknown as [string, Setting][];
}

/** Rows of the docs table for variables that qrun does not read itself, placed after the row of `after`. */
export const DOCUMENTED_ONLY: { after: string; variable: string; docDefault: string; description: string }[] =
  [
    {
      after: 'QRUN_S3_FORCE_PATH_STYLE',
      variable: '`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`',
      docDefault: '(SDK default chain)',
      description: "S3 credentials; any source of the AWS SDK's default chain works",
    },
    {
      after: 'QRUN_S3_FORCE_PATH_STYLE',
      variable: '`AWS_REQUEST_CHECKSUM_CALCULATION`, `AWS_RESPONSE_CHECKSUM_VALIDATION`',
      docDefault: '(SDK default)',
      description:
        "set both to `WHEN_REQUIRED` for S3-compatible servers that reject the SDK's default CRC32 checksums",
    },
  ];
