import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfigFields } from '../../src/connectors/config-fields.js';
import {
  DatabaseError,
  JsonText,
  QueryAbortedError,
  type CellValue,
  type ColumnInfo,
  type Connector,
  type ConnectorContext,
  type ParameterValue,
} from '../../src/connectors/connector.js';
import { mysqlConnector } from '../../src/connectors/mysql/mysql-connector.js';
import { postgresConnector } from '../../src/connectors/postgres/postgres-connector.js';
import { getConnector, listConnectors } from '../../src/connectors/registry.js';
import { AppError } from '../../src/core/errors.js';
import { EgressPolicy } from '../../src/net/egress-policy.js';
import type { EngineFixture } from '../helpers/engine-fixture.js';
import { engineFixtures } from '../helpers/engines.js';

/**
 * One suite, every engine (like Kysely's dialect loop): an engine that adds a fixture to
 * test/helpers/engines.ts gets all of these tests.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.`);
    await sleep(100);
  }
}

/** Comparable form: JsonText by its text, integers by value whether bigint or JSON digits, bytes as a list. */
function comparable(value: CellValue): unknown {
  if (typeof value === 'bigint') return { integer: value.toString() };
  if (value instanceof JsonText) {
    return /^-?\d+$/.test(value.text) ? { integer: BigInt(value.text).toString() } : { json: value.text };
  }
  if (value instanceof Uint8Array) return { bytes: Array.from(value) };
  if (Array.isArray(value)) return value.map(comparable);
  return value;
}

async function settle(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (err: unknown) => err,
  );
}

const unique = () => randomBytes(4).toString('hex');

describe.each(engineFixtures().map((f) => [f.type, f] as const))(
  '%s connector',
  (_type, fixture: EngineFixture) => {
    const connector: Connector = fixture.connector;
    let config: Record<string, unknown>;
    let context: ConnectorContext;

    const prepare = (raw: Record<string, unknown>) =>
      connector.validateConfig(validateConfigFields(connector.configFields, raw), context);

    beforeAll(async () => {
      const made = await fixture.setup();
      context = made.context;
      config = prepare(made.config);
    });

    afterAll(async () => {
      await fixture.teardown();
    });

    async function run(
      sql: string,
      parameters: readonly ParameterValue[] = [],
      batchSize = 1000,
      signal: AbortSignal = new AbortController().signal,
    ): Promise<{ columns: ColumnInfo[]; batches: CellValue[][][]; rows: CellValue[][] }> {
      const stream = await connector.stream(config, sql, parameters, { signal, batchSize }, context);
      const batches: CellValue[][][] = [];
      for await (const batch of stream.rows) batches.push(batch);
      return { columns: stream.columns, batches, rows: batches.flat() };
    }

    it('test() connects and runs a trivial query', async () => {
      await expect(connector.test(config, context)).resolves.toBeUndefined();
    });

    // File engines have no credentials: the test exists only for engines that do.
    (fixture.badCredentials ? it : () => undefined)(
      'bad credentials fail with a DatabaseError that does not carry the secret',
      async () => {
        const bad = fixture.badCredentials?.();
        if (!bad) return;
        const badConfig = prepare(bad.config);
        for (const attempt of [
          () => connector.test(badConfig, context),
          () =>
            connector.stream(
              badConfig,
              'SELECT 1',
              [],
              { signal: new AbortController().signal, batchSize: 10 },
              context,
            ),
        ]) {
          const err = await settle(attempt());
          expect(err).toBeInstanceOf(DatabaseError);
          const message = (err as DatabaseError).message;
          expect(message.length).toBeGreaterThan(0);
          expect(message).not.toContain(bad.secret);
        }
      },
    );

    it('streams series(25000) in order, in several batches', async () => {
      const { columns, batches, rows } = await run(fixture.sql.series(25_000), [], 1000);
      expect(columns.map((c) => c.name)).toEqual(['n']);
      expect(rows).toHaveLength(25_000);
      // Integers may come as numbers, bigints or exact digits (JsonText), per the connector contract.
      const asNumber = (cell: unknown) => Number(cell instanceof JsonText ? cell.text : cell);
      const firstWrong = rows.findIndex((row, i) => row.length !== 1 || asNumber(row[0]) !== i + 1);
      expect(firstWrong).toBe(-1);
      expect(batches.length).toBeGreaterThan(1);
    });

    describe('values', () => {
      it('has value cases (every engine must cover its side of the value table)', () => {
        expect(fixture.valueCases.length).toBeGreaterThan(0);
      });
      for (const valueCase of fixture.valueCases) {
        it(valueCase.name, async () => {
          const { columns, rows } = await run(valueCase.sql);
          expect(rows).toHaveLength(1);
          expect(comparable(rows[0] ?? [])).toEqual(comparable(valueCase.expected));
          if (valueCase.types) expect(columns.map((c) => c.type)).toEqual(valueCase.types);
        });
      }
    });

    it('binds parameters, never splicing them into the SQL', async () => {
      const tricky = `it's "quoted" \\ back'slash; -- ? $1 :a ') OR 1=1 --`;
      const { columns, rows } = await run(fixture.sql.twoParameters, [tricky, null]);
      expect(columns.map((c) => c.name)).toEqual(['a', 'b']);
      expect(rows).toEqual([[tricky, null]]);
    });

    it('a statement without rows gives no columns and no rows', async () => {
      const table = `qrun_norows_${unique()}`;
      for (const sql of [
        `CREATE TABLE ${table} (id INTEGER)`,
        `INSERT INTO ${table} VALUES (1)`,
        `DROP TABLE ${table}`,
      ]) {
        const { columns, rows } = await run(sql);
        expect({ sql, columns, rows }).toEqual({ sql, columns: [], rows: [] });
      }
    });

    it('a syntax error is a DatabaseError with the database message', async () => {
      const err = await settle(run('SELEC 1 FROMM nowhere'));
      expect(err).toBeInstanceOf(DatabaseError);
      expect((err as DatabaseError).message).toMatch(/syntax/i);
    });

    it('aborting a running statement stops it on the server within seconds', async () => {
      const marker = `qrun_abort_${unique()}`;
      const controller = new AbortController();
      const reason = new Error('test abort');
      const consuming = run(`/* ${marker} */ ${fixture.sql.slow(30)}`, [], 100, controller.signal);
      const outcome = settle(consuming);

      if (fixture.runningStatements) {
        const count = fixture.runningStatements.bind(fixture);
        await waitFor('the statement to run', async () => (await count(marker)) >= 1, 10_000);
      } else {
        await sleep(500);
      }
      const abortedAt = Date.now();
      controller.abort(reason);
      const err = await outcome;
      expect(err).toBeInstanceOf(QueryAbortedError);
      expect((err as QueryAbortedError).reason).toBe(reason);
      expect(Date.now() - abortedAt).toBeLessThan(5_000);

      if (fixture.runningStatements) {
        const count = fixture.runningStatements.bind(fixture);
        await waitFor('the statement to be gone', async () => (await count(marker)) === 0, 5_000);
      }
    });

    it('a signal aborted before the stream starts is a QueryAbortedError', async () => {
      const controller = new AbortController();
      const reason = new Error('aborted early');
      controller.abort(reason);
      const err = await settle(run(fixture.sql.series(10), [], 10, controller.signal));
      expect(err).toBeInstanceOf(QueryAbortedError);
      expect((err as QueryAbortedError).reason).toBe(reason);
    });

    it('aborting between batches makes the next pull throw', async () => {
      const controller = new AbortController();
      const stream = await connector.stream(
        config,
        fixture.sql.series(5_000),
        [],
        { signal: controller.signal, batchSize: 100 },
        context,
      );
      const iterator = stream.rows[Symbol.asyncIterator]();
      const first = await iterator.next();
      expect(first.done).toBe(false);
      controller.abort(new Error('enough'));
      const err = await settle(iterator.next());
      expect(err).toBeInstanceOf(QueryAbortedError);
    });

    it('stopping early releases the statement', async () => {
      const marker = `qrun_early_${unique()}`;
      const stream = await connector.stream(
        config,
        `/* ${marker} */ ${fixture.sql.series(200_000)}`,
        [],
        { signal: new AbortController().signal, batchSize: 100 },
        context,
      );
      let seen = 0;
      for await (const batch of stream.rows) {
        seen += batch.length;
        break;
      }
      expect(seen).toBeGreaterThan(0);
      if (fixture.runningStatements) {
        const count = fixture.runningStatements.bind(fixture);
        await waitFor('the statement to be gone', async () => (await count(marker)) === 0, 5_000);
      }
      // The connector still works afterwards.
      await expect(connector.test(config, context)).resolves.toBeUndefined();
    });
  },
);

describe.each([
  ['postgresql', postgresConnector, 5432],
  ['mysql', mysqlConnector, 3306],
] as const)('%s configuration', (_type, connector: Connector, port) => {
  const valid = { hostname: 'db.example', database: 'app', username: 'reader', password: 'hunter22' };

  function rejection(input: unknown): AppError {
    try {
      validateConfigFields(connector.configFields, input);
    } catch (err) {
      expect(err).toBeInstanceOf(AppError);
      return err as AppError;
    }
    throw new Error('the configuration was accepted');
  }

  it('declares exactly its fields, with the password secret', () => {
    expect(connector.configFields.map((f) => [f.name, f.type, f.required, f.secret, f.default])).toEqual([
      ['hostname', 'string', true, false, undefined],
      ['port', 'integer', false, false, port],
      ['database', 'string', true, false, undefined],
      ['username', 'string', true, false, undefined],
      ['password', 'string', false, true, undefined],
      ['ssl', 'boolean', false, false, false],
    ]);
    expect(connector.capabilities).toEqual({
      placeholders: connector.type === 'postgresql' ? 'dollar' : 'question',
      serverCancel: true,
      fileBased: false,
    });
  });

  it('fills the defaults', () => {
    const config = connector.validateConfig(validateConfigFields(connector.configFields, valid), {
      fileDir: '/nonexistent',
      egress: new EgressPolicy(),
    });
    expect(config).toEqual({ ...valid, port, ssl: false });
  });

  it('rejects a missing hostname with 400 naming the field', () => {
    const { hostname: _omitted, ...rest } = valid;
    const err = rejection(rest);
    expect(err.status).toBe(400);
    expect(err.message).toContain('hostname');
    expect(err.metadata).toEqual({ field: 'configuration.hostname' });
  });

  it('rejects a port given as a string with 400 naming the field', () => {
    const err = rejection({ ...valid, port: String(port) });
    expect(err.status).toBe(400);
    expect(err.message).toContain('port');
    expect(err.metadata).toEqual({ field: 'configuration.port' });
  });

  it('rejects ssl that is not a boolean, and unknown fields', () => {
    expect(rejection({ ...valid, ssl: 'yes' }).metadata).toEqual({ field: 'configuration.ssl' });
    expect(rejection({ ...valid, host: 'x' }).metadata).toEqual({ field: 'configuration.host' });
  });
});

describe('connector registry', () => {
  it('knows the four engines by type id', () => {
    expect(listConnectors().map((c) => c.type)).toEqual(['postgresql', 'mysql', 'sqlite', 'duckdb']);
    expect(getConnector('postgresql')).toBe(postgresConnector);
    expect(getConnector('mysql')).toBe(mysqlConnector);
    expect(getConnector('oracle')).toBeUndefined();
  });
});

const enabled = new Set(engineFixtures().map((f) => f.type));

/** Statements that once crashed or endangered the process, per engine, on the machine's servers. */
const REFUSED = [
  {
    type: 'postgresql',
    connector: postgresConnector,
    config: { hostname: '127.0.0.1', port: 5432, database: 'postgres', username: 'postgres', ssl: false },
    refused: [
      ['COPY pg_catalog.pg_class FROM STDIN', /COPY/],
      ['COPY (SELECT 1) TO STDOUT', /COPY/],
      ['SELECT 1; SELECT 2', /multiple commands/],
    ],
  },
  {
    type: 'mysql',
    connector: mysqlConnector,
    config: { hostname: '127.0.0.1', port: 3306, database: 'test', username: 'root', ssl: false },
    refused: [
      ["LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE nowhere", /local infile|LOCAL/i],
      ['SELECT 1; SELECT 2', /syntax/],
    ],
  },
] as const;

describe.each(REFUSED.filter((c) => enabled.has(c.type)).map((c) => [c.type, c] as const))(
  '%s refuses statements it cannot serve safely',
  (type, { connector, config, refused }) => {
    for (const [sql, message] of refused) {
      it(sql, async () => {
        const err = await settle(
          (async () => {
            const stream = await connector.stream(
              { ...config },
              sql,
              [],
              { signal: AbortSignal.timeout(10_000), batchSize: 10 },
              { fileDir: '/nonexistent', egress: new EgressPolicy() },
            );
            for await (const _batch of stream.rows) {
              // drain
            }
          })(),
        );
        expect(err).toBeInstanceOf(DatabaseError);
        expect((err as DatabaseError).message).toMatch(message);
      });
    }
  },
);
