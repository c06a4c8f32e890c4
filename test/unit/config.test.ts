import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkDeployment, ConfigError, loadConfig } from '../../src/config/config.js';

const KEY = Buffer.alloc(32, 7).toString('base64');

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

describe('checkDeployment', () => {
  const scaleOut = {
    QRUN_DATABASE_URL: 'postgres://db/qrun',
    QRUN_REDIS_URL: 'redis://redis:6379',
    QRUN_SECRET_KEY: KEY,
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
});
