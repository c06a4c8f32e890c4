import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
import { connectionConfigSchemas, getConnector, listConnectors } from '../../src/connectors/registry.js';
import { AppError } from '../../src/core/errors.js';
import { EgressPolicy } from '../../src/net/egress-policy.js';
import { comparable, type EngineFixture } from '../helpers/engine-fixture.js';
import { engineFixtures } from '../helpers/engines.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * One suite, every engine (like Kysely's dialect loop): an engine that adds a fixture to
 * test/helpers/engines.ts gets all of these tests.
 */

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
      connector.validateConfig(connector.parseConfig(raw), context);

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

    // File engines have no credentials: for them the test shows as skipped.
    it.skipIf(!fixture.badCredentials)(
      'bad credentials fail with a DatabaseError that does not carry the secret',
      async () => {
        const bad = fixture.badCredentials!();
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

    it('binds parameters written in the placeholder style its capabilities declare', async () => {
      const mark = (n: number) => (connector.capabilities.placeholders === 'dollar' ? `$${n}` : '?');
      expect(fixture.sql.twoParameters).toContain(mark(2));
      const { rows } = await run(`SELECT ${mark(1)} AS a, ${mark(2)} AS b`, ['first', 'second']);
      expect(rows).toEqual([['first', 'second']]);
    });

    it('is file-based exactly when its configuration names a file rather than a host', async () => {
      const names = connector.configFields.map((f) => f.name);
      if (connector.capabilities.fileBased) {
        expect(names).toContain('path');
        expect(names).not.toContain('hostname');
        // The file is reached only inside the organization's directory.
        expect(() => prepare({ ...config, path: '../elsewhere.db' })).toThrow(/configuration\.path/);
      } else {
        expect(names).toContain('hostname');
        // Every connect passes the egress policy (which ConnectionService skips for file engines).
        const denied = { ...context, egress: new EgressPolicy({ deny: ['0.0.0.0/0', '::/0'] }) };
        const err = await settle(connector.test(config, denied));
        expect(err).toBeInstanceOf(AppError);
        expect((err as AppError).key).toBe('host_not_allowed');
      }
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

    it('aborting a running statement stops it on the server, long before it would end', async () => {
      const marker = `qrun_abort_${unique()}`;
      const controller = new AbortController();
      const reason = new Error('test abort');
      // Ten minutes of work: an abort that only took effect at the statement's end would time the test out.
      const consuming = run(`/* ${marker} */ ${fixture.sql.slow(600)}`, [], 100, controller.signal);
      const outcome = settle(consuming);

      // Abort only once the statement is really running: seen on the server, or burning CPU.
      if (fixture.runningStatements) {
        const count = fixture.runningStatements.bind(fixture);
        await waitUntil('the statement to run', async () => (await count(marker)) >= 1);
      } else {
        await fixture.quiet?.();
        const cpu = fixture.engineCpuMs!.bind(fixture);
        const before = cpu();
        await waitUntil('the engine to spend 200 ms of CPU on the statement', () => cpu() - before >= 200);
      }
      controller.abort(reason);
      const err = await outcome;
      expect(err).toBeInstanceOf(QueryAbortedError);
      expect((err as QueryAbortedError).reason).toBe(reason);

      if (fixture.runningStatements) {
        const count = fixture.runningStatements.bind(fixture);
        await waitUntil('the statement to be gone', async () => (await count(marker)) === 0);
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
        await waitUntil('the statement to be gone', async () => (await count(marker)) === 0);
      }
      // The connector still works afterwards.
      await expect(connector.test(config, context)).resolves.toBeUndefined();
    });
  },
);

// Each type's fields under Polytomic's names for it: PostgreSQL's, and MySQL's `dbname`, `account`, `passwd`.
const PG_NAMES = { database: 'database', username: 'username', password: 'password' } as const;
const MYSQL_NAMES = { database: 'dbname', username: 'account', password: 'passwd' } as const;

describe.each([
  ['postgresql', postgresConnector, 5432, PG_NAMES],
  ['mysql', mysqlConnector, 3306, MYSQL_NAMES],
] as const)('%s configuration', (type, connector: Connector, port, names) => {
  const valid: Record<string, unknown> = {
    hostname: 'db.example',
    [names.database]: 'app',
    [names.username]: 'reader',
    [names.password]: 'hunter22',
  };
  const fieldList = `hostname, port, ${names.database}, ${names.username}, ${names.password}, ssl`;

  function rejection(input: unknown): AppError {
    try {
      connector.parseConfig(input);
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
      // Polytomic's mysql type has the database optional.
      [names.database, 'string', type === 'postgresql', false, undefined],
      [names.username, 'string', true, false, undefined],
      [names.password, 'string', false, true, undefined],
      ['ssl', 'boolean', false, false, false],
    ]);
    expect(connector.configFields.filter((f) => f.target).map((f) => f.name)).toEqual([
      'hostname',
      'port',
      names.database,
      names.username,
      'ssl',
    ]);
    expect(connector.capabilities).toEqual({
      placeholders: connector.type === 'postgresql' ? 'dollar' : 'question',
      fileBased: false,
    });
  });

  it('fills the defaults, and counts null and empty strings as absent', () => {
    const config = connector.validateConfig(connector.parseConfig(valid), {
      fileDir: '/nonexistent',
      egress: new EgressPolicy(),
    });
    expect(config).toEqual({ ...valid, port, ssl: false });
    expect(connector.parseConfig({ ...valid, port: null, ssl: '', [names.password]: null })).toEqual({
      ...valid,
      [names.password]: undefined,
      port,
      ssl: false,
    });
  });

  it('says what is wrong, naming the field', () => {
    const cases: [unknown, string, string | undefined][] = [
      [[], 'configuration must be a JSON object.', undefined],
      [
        { ...valid, host: 'x' },
        `configuration.host is not a field of this connection type (expected: ${fieldList}).`,
        'host',
      ],
      [{ ...valid, [names.username]: '' }, `configuration.${names.username} is required.`, names.username],
      [{ ...valid, port: 5.5 }, 'configuration.port must be a whole number.', 'port'],
      [{ ...valid, port: 0 }, 'configuration.port must be a port number from 1 to 65535.', 'port'],
      [{ ...valid, port: 65536 }, 'configuration.port must be a port number from 1 to 65535.', 'port'],
      [
        { ...valid, [names.username]: 7 },
        `configuration.${names.username} must be a string.`,
        names.username,
      ],
      [
        { ...valid, [names.password]: 'x'.repeat(4097) },
        `configuration.${names.password} must be at most 4096 characters.`,
        names.password,
      ],
      [{ ...valid, ssl: 1 }, 'configuration.ssl must be true or false.', 'ssl'],
      // The first problem in field order wins.
      [
        { ...valid, ssl: 1, port: 'x', hostname: undefined },
        'configuration.hostname is required.',
        'hostname',
      ],
      [{ ...valid, ssl: 1, port: 'x' }, 'configuration.port must be a whole number.', 'port'],
      [{ hostname: 5, [names.username]: 'u' }, 'configuration.hostname must be a string.', 'hostname'],
    ];
    for (const [input, message, field] of cases) {
      const err = rejection(input);
      expect({ status: err.status, key: err.key, message: err.message }).toEqual({
        status: 400,
        key: 'invalid_configuration',
        message,
      });
      expect(err.metadata).toEqual(field === undefined ? undefined : { field: `configuration.${field}` });
    }
    expect(connector.parseConfig({ ...valid, port: 65535 })).toMatchObject({ port: 65535 });
  });

  it('checks a configuration again before the engine runs it: a bad one is a DatabaseError', async () => {
    const context = { fileDir: '/nonexistent', egress: new EgressPolicy() };
    for (const attempt of [
      () => connector.test({ ...valid, port: 'x' }, context),
      () =>
        connector.stream(
          { ...valid, port: 'x' },
          'SELECT 1',
          [],
          { signal: new AbortController().signal, batchSize: 1 },
          context,
        ),
    ]) {
      const err = await settle(attempt());
      expect(err).toBeInstanceOf(DatabaseError);
      expect((err as DatabaseError).message).toBe('configuration.port must be a whole number.');
    }
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

  it.runIf(type === 'mysql')(
    "takes qrun's earlier names (PostgreSQL's) as aliases, stored under Polytomic's, never both for one field",
    () => {
      const old = { hostname: 'db.example', database: 'app', username: 'reader', password: 'hunter22' };
      expect(connector.parseConfig(old)).toEqual({ ...valid, port, ssl: false });
      // Mixed spellings of different fields are fine.
      const mixed = { hostname: 'db.example', dbname: 'app', username: 'reader', passwd: 'hunter22' };
      expect(connector.parseConfig(mixed)).toEqual({
        ...valid,
        port,
        ssl: false,
      });
      for (const [alias, name] of [
        ['database', 'dbname'],
        ['username', 'account'],
        ['password', 'passwd'],
      ] as const) {
        const err = rejection({ ...valid, [alias]: 'other' });
        expect({ key: err.key, message: err.message }).toEqual({
          key: 'invalid_configuration',
          message: `configuration.${alias} names the same field as configuration.${name}; send only one of them.`,
        });
      }
      // Field-level messages name the field as it was sent.
      expect(rejection({ ...old, username: 7 }).message).toBe('configuration.username must be a string.');
    },
  );
});

describe('connector registry', () => {
  it('knows the four engines by type id', () => {
    expect(listConnectors().map((c) => c.type)).toEqual(['postgresql', 'mysql', 'sqlite', 'duckdb']);
    expect(getConnector('postgresql')).toBe(postgresConnector);
    expect(getConnector('mysql')).toBe(mysqlConnector);
    expect(getConnector('oracle')).toBeUndefined();
  });

  it("declares each engine's capabilities", () => {
    expect(Object.fromEntries(listConnectors().map((c) => [c.type, c.capabilities]))).toEqual({
      postgresql: { placeholders: 'dollar', fileBased: false },
      mysql: { placeholders: 'question', fileBased: false },
      sqlite: { placeholders: 'question', fileBased: true },
      duckdb: { placeholders: 'question', fileBased: true },
    });
  });

  it("gives each type's configuration as JSON Schema for the OpenAPI document", () => {
    const schemas = connectionConfigSchemas();
    expect(Object.keys(schemas)).toEqual(['postgresql', 'mysql', 'sqlite', 'duckdb']);
    expect(JSON.parse(JSON.stringify(schemas.postgresql))).toEqual({
      type: 'object',
      additionalProperties: false,
      required: ['hostname', 'database', 'username'],
      properties: {
        hostname: {
          type: 'string',
          maxLength: 4096,
          description: 'Server host name or IP address.',
          'x-target': true,
        },
        port: {
          type: 'integer',
          title: 'port number',
          minimum: 1,
          maximum: 65535,
          default: 5432,
          description: 'Server TCP port.',
          'x-target': true,
        },
        database: {
          type: 'string',
          maxLength: 4096,
          description: 'Database to connect to.',
          'x-target': true,
        },
        username: { type: 'string', maxLength: 4096, description: 'Role to log in as.', 'x-target': true },
        password: { type: 'string', maxLength: 4096, description: 'Password of the role.', 'x-secret': true },
        ssl: {
          type: 'boolean',
          default: false,
          description: 'Connect over TLS and verify the server certificate.',
          'x-target': true,
        },
      },
    });
    expect(schemas.sqlite?.required).toEqual(['path']);
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
    config: { hostname: '127.0.0.1', port: 3306, dbname: 'test', account: 'root', ssl: false },
    refused: [
      ["LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE nowhere", /local infile|LOCAL/i],
      ['SELECT 1; SELECT 2', /syntax/],
    ],
  },
] as const;

describe.each(REFUSED.map((c) => [c.type, c] as const))(
  '%s refuses statements it cannot serve safely',
  (type, { connector, config, refused }) => {
    for (const [sql, message] of refused) {
      // An engine left out with QRUN_TEST_ENGINES shows as skipped.
      it.skipIf(!enabled.has(type))(sql, async () => {
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
