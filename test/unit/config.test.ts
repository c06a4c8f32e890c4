import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { checkDeployment, ConfigError, loadConfig, type Config } from '../../src/config/config.js';

const KEY = Buffer.alloc(32, 7).toString('base64');
const PARTNER_KEY = `qrun_p_${Buffer.alloc(32, 9).toString('base64url')}`;

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('has defaults that need nothing set', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ host: '127.0.0.1', port: 8080, pageRows: 1000, pageBytes: 4 * 1024 * 1024 });
    expect(c.databaseUrl).toMatch(/^sqlite:.*data\/qrun\.sqlite$/);
    expect(c.resultsUrl).toMatch(/^file:.*data\/results$/);
    expect(c.redisUrl).toBeUndefined();
  });

  it.each([
    ['QRUN_PORT', '70000'],
    ['QRUN_PORT', '80a'],
    ['QRUN_PAGE_BYTES', '10'],
    ['QRUN_REDIS_URL', 'http://x'],
    ['QRUN_REDIS_PREFIX', 'has space'],
    ['QRUN_RESULTS_URL', 'ftp://x'],
    ['QRUN_S3_ENDPOINT', 'localhost:9000'],
    ['QRUN_S3_FORCE_PATH_STYLE', 'maybe'],
  ])('names %s in the error for %s', (name, value) => {
    const err = configError(() => loadConfig({ [name]: value }));
    expect(err.message.startsWith(`${name}: `)).toBe(true);
  });

  it('keeps task rows 30 days after expiry and sweeps for orphan pages every 10 minutes by default', () => {
    expect(loadConfig({})).toMatchObject({ taskRetentionDays: 30, orphanSweepIntervalSeconds: 600 });
    const c = loadConfig({ QRUN_TASK_RETENTION_DAYS: '1', QRUN_ORPHAN_SWEEP_INTERVAL_SECONDS: '0' });
    expect(c).toMatchObject({ taskRetentionDays: 1, orphanSweepIntervalSeconds: 0 });
    // Less than a day could delete a task that an Idempotency-Key (kept 24 h) still replays.
    expect(configError(() => loadConfig({ QRUN_TASK_RETENTION_DAYS: '0' })).variable).toBe(
      'QRUN_TASK_RETENTION_DAYS',
    );
  });

  it('reads secrets from *_FILE, and refuses both forms at once', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'qrun-config-'));
    const file = path.join(dir, 'key');
    writeFileSync(file, `${KEY}\n`);
    expect(loadConfig({ QRUN_SECRET_KEY_FILE: file }).secretKey).toBe(KEY);
    expect(configError(() => loadConfig({ QRUN_SECRET_KEY_FILE: file, QRUN_SECRET_KEY: KEY })).variable).toBe(
      'QRUN_SECRET_KEY',
    );
    expect(configError(() => loadConfig({ QRUN_SECRET_KEY_FILE: path.join(dir, 'missing') })).variable).toBe(
      'QRUN_SECRET_KEY_FILE',
    );
  });
});

describe('loadConfig: one line per problem, defaults from the schema', () => {
  afterEach(() => vi.unstubAllEnvs());

  it.each([
    [{ QRUN_PORT: 'eighty' }, 'QRUN_PORT: expected a whole number, got "eighty"'],
    [{ QRUN_PORT: '70000' }, 'QRUN_PORT: must be between 0 and 65535, got 70000'],
    [{ QRUN_PAGE_ROWS: '0' }, 'QRUN_PAGE_ROWS: must be between 1 and 1000000, got 0'],
    [{ QRUN_ORG_CONCURRENCY: '0' }, 'QRUN_ORG_CONCURRENCY: must be between 1 and 1024, got 0'],
    [{ QRUN_WORKER_PORT: '-1' }, 'QRUN_WORKER_PORT: expected a whole number, got "-1"'],
    [{ QRUN_S3_FORCE_PATH_STYLE: 'maybe' }, 'QRUN_S3_FORCE_PATH_STYLE: expected true or false, got "maybe"'],
    [
      { QRUN_LOG_LEVEL: 'loud' },
      'QRUN_LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent',
    ],
    [{ QRUN_DATABASE_URL: 'mongodb://x' }, 'QRUN_DATABASE_URL: must start with sqlite: or postgres://'],
    [{ QRUN_RESULTS_URL: 'ftp://x' }, 'QRUN_RESULTS_URL: must start with file: or s3://'],
    [{ QRUN_REDIS_URL: 'http://x' }, 'QRUN_REDIS_URL: must start with redis:// or rediss://'],
    [
      { QRUN_SECRET_KEY: 'short' },
      'QRUN_SECRET_KEY: must be 32 bytes, base64-encoded (try: openssl rand -base64 32)',
    ],
  ])('refuses %j with "%s"', (env, message) => {
    expect(configError(() => loadConfig(env)).message).toBe(message);
  });

  it('computes the defaults that depend on other settings or on the machine', () => {
    const c = loadConfig({ QRUN_DATA_DIR: '/srv/q' });
    expect(c).toMatchObject({
      dataDir: '/srv/q',
      databaseUrl: 'sqlite:/srv/q/qrun.sqlite',
      resultsUrl: 'file:/srv/q/results',
      organizationConcurrency: Number.POSITIVE_INFINITY,
      duckdbThreads: Math.min(2, availableParallelism()),
    });
    expect(loadConfig({ QRUN_ORG_CONCURRENCY: '3' }).organizationConcurrency).toBe(3);
  });

  it('raises the body limit to twice the longest query when it is below it', () => {
    expect(loadConfig({}).bodyLimitBytes).toBe(2 * 1024 * 1024);
    expect(loadConfig({ QRUN_MAX_QUERY_BYTES: '4194304' }).bodyLimitBytes).toBe(8 * 1024 * 1024);
    expect(loadConfig({ QRUN_BODY_LIMIT_BYTES: '2048', QRUN_MAX_QUERY_BYTES: '1024' }).bodyLimitBytes).toBe(
      2048,
    );
  });

  it('treats an empty variable as unset and trims numbers and flags', () => {
    expect(loadConfig({ QRUN_PORT: '', QRUN_HOST: '' })).toMatchObject({ port: 8080, host: '127.0.0.1' });
    expect(loadConfig({ QRUN_PORT: ' 81 ', QRUN_S3_FORCE_PATH_STYLE: ' ON ' })).toMatchObject({
      port: 81,
      s3ForcePathStyle: true,
    });
  });

  it('reads only the env it is given', () => {
    vi.stubEnv('QRUN_PORT', '1234');
    expect(loadConfig({}).port).toBe(8080);
  });

  it('reads QRUN_REDIS_URL and QRUN_PARTNER_KEY from *_FILE too, checked like the variable', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'qrun-config-'));
    writeFileSync(path.join(dir, 'redis'), 'redis://cache:6379\n');
    writeFileSync(path.join(dir, 'partner'), `${PARTNER_KEY}\n`);
    writeFileSync(path.join(dir, 'bad'), 'http://cache\n');
    const c = loadConfig({
      QRUN_REDIS_URL_FILE: path.join(dir, 'redis'),
      QRUN_PARTNER_KEY_FILE: path.join(dir, 'partner'),
    });
    expect(c).toMatchObject({ redisUrl: 'redis://cache:6379', partnerKey: PARTNER_KEY });
    expect(configError(() => loadConfig({ QRUN_REDIS_URL_FILE: path.join(dir, 'bad') })).variable).toBe(
      'QRUN_REDIS_URL',
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('types Config from the schema, with the field types the code relies on', () => {
    expectTypeOf<Config['port']>().toEqualTypeOf<number>();
    expectTypeOf<Config['host']>().toEqualTypeOf<string>();
    expectTypeOf<Config['s3ForcePathStyle']>().toEqualTypeOf<boolean>();
    expectTypeOf<Config['egressAllow']>().toEqualTypeOf<string[]>();
    expectTypeOf<Config['redisUrl']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<Config['workerPort']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<Config['secretKey']>().toEqualTypeOf<string | undefined>();
  });
});

describe('checkDeployment', () => {
  const scaleOut = {
    QRUN_DATABASE_URL: 'postgres://db/qrun',
    QRUN_REDIS_URL: 'redis://redis:6379',
    QRUN_SECRET_KEY: KEY,
    QRUN_PARTNER_KEY: PARTNER_KEY,
  };

  it('accepts the embedded default for qrun start', () => {
    expect(() => checkDeployment(loadConfig({}), 'start')).not.toThrow();
  });

  it.each(['api', 'worker'] as const)('accepts PostgreSQL + Redis + a shared key for qrun %s', (role) => {
    expect(() => checkDeployment(loadConfig(scaleOut), role)).not.toThrow();
  });

  it.each([
    [
      'QRUN_DATABASE_URL',
      { ...scaleOut, QRUN_DATABASE_URL: undefined },
      /SQLite file belongs to a single process/,
    ],
    ['QRUN_REDIS_URL', { ...scaleOut, QRUN_REDIS_URL: undefined }, /through Redis/],
    ['QRUN_SECRET_KEY', { ...scaleOut, QRUN_SECRET_KEY: undefined }, /same key/],
  ])('refuses a separate process without %s, saying why', (variable, env, why) => {
    for (const role of ['api', 'worker'] as const) {
      const err = configError(() => checkDeployment(loadConfig(env), role));
      expect(err.variable).toBe(variable);
      expect(err.message).toMatch(why);
    }
  });

  it('refuses qrun api without a configured partner key (every api process must accept the same one)', () => {
    const env = { ...scaleOut, QRUN_PARTNER_KEY: undefined };
    const err = configError(() => checkDeployment(loadConfig(env), 'api'));
    expect(err.variable).toBe('QRUN_PARTNER_KEY');
    expect(err.message).toMatch(/revokes the old one/);
    // Workers never accept API keys, so they need none.
    expect(() => checkDeployment(loadConfig(env), 'worker')).not.toThrow();
  });

  it.each(['secret', `qrun_u_${Buffer.alloc(32).toString('base64url')}`, `${PARTNER_KEY}x`])(
    'refuses a partner key that is not one (%s)',
    (value) => {
      expect(configError(() => loadConfig({ QRUN_PARTNER_KEY: value })).variable).toBe('QRUN_PARTNER_KEY');
    },
  );
});

describe('QRUN_FILE_ROOT and QRUN_DATA_DIR', () => {
  it('default to ./data and ./files, side by side in the working directory', () => {
    const c = loadConfig({});
    expect(c.dataDir).toBe(path.resolve('data'));
    expect(c.fileRoot).toBe(path.resolve('files'));
  });

  it('accepts two separate directories, even with a shared prefix in their names', () => {
    const c = loadConfig({ QRUN_DATA_DIR: '/srv/qrun', QRUN_FILE_ROOT: '/srv/qrun-files' });
    expect(c.fileRoot).toBe('/srv/qrun-files');
  });

  it.each([
    ['the same directory', '/srv/qrun', '/srv/qrun'],
    ['the file root inside the data directory', '/srv/qrun', '/srv/qrun/files'],
    ['the data directory inside the file root', '/srv/files/data', '/srv/files'],
    ['the old default, files inside data', undefined, './data/files'],
  ])('refuse to start with %s, in one line naming QRUN_FILE_ROOT', (_, dataDir, fileRoot) => {
    const err = configError(() => loadConfig({ QRUN_DATA_DIR: dataDir, QRUN_FILE_ROOT: fileRoot }));
    expect(err.variable).toBe('QRUN_FILE_ROOT');
    expect(err.message).toMatch(
      /^QRUN_FILE_ROOT: the file root .* and the data directory QRUN_DATA_DIR .* overlap/,
    );
    expect(err.message).not.toContain('\n');
  });

  it('see through a symlink that makes them overlap', () => {
    const base = realpathSync(mkdtempSync(path.join(tmpdir(), 'qrun-config-')));
    mkdirSync(path.join(base, 'data'));
    symlinkSync(path.join(base, 'data'), path.join(base, 'alias'));
    const err = configError(() =>
      loadConfig({
        QRUN_DATA_DIR: path.join(base, 'data'),
        QRUN_FILE_ROOT: path.join(base, 'alias', 'files'),
      }),
    );
    expect(err.variable).toBe('QRUN_FILE_ROOT');
    rmSync(base, { recursive: true, force: true });
  });
});
