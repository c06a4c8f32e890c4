import { Type } from 'typebox';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { ConfigSpec, configSchema, defineConnector, field } from '../../src/connectors/config-schema.js';
import type { ConfigField } from '../../src/connectors/connector.js';
import type { DuckdbConfig } from '../../src/connectors/duckdb/duckdb-connector.js';
import type { MysqlConfig } from '../../src/connectors/mysql/mysql-connector.js';
import type { PgConfig } from '../../src/connectors/postgres/postgres-connector.js';
import { listConnectors } from '../../src/connectors/registry.js';
import type { SqliteConfig } from '../../src/connectors/sqlite/sqlite-connector.js';
import { AppError } from '../../src/core/errors.js';
import { EgressPolicy } from '../../src/net/egress-policy.js';

/** Each configuration is one TypeBox schema; these pin what is made from it. */

/** PostgreSQL's fields, or MySQL's under Polytomic's names with qrun's earlier ones as aliases. */
function network(defaultPort: number, database: string, login: string, mysql = false): ConfigField[] {
  const also = (description: string, alias: string) =>
    mysql ? `${description} Also accepted as \`${alias}\`.` : description;
  return [
    {
      name: 'hostname',
      type: 'string',
      required: true,
      secret: false,
      target: true,
      description: 'Server host name or IP address.',
    },
    {
      name: 'port',
      type: 'integer',
      required: false,
      secret: false,
      target: true,
      default: defaultPort,
      description: 'Server TCP port.',
    },
    {
      name: mysql ? 'dbname' : 'database',
      type: 'string',
      // Optional in Polytomic's mysql type.
      required: !mysql,
      secret: false,
      target: true,
      description: also(database, 'database'),
    },
    {
      name: mysql ? 'account' : 'username',
      type: 'string',
      required: true,
      secret: false,
      target: true,
      description: also(`${login} to log in as.`, 'username'),
    },
    {
      name: mysql ? 'passwd' : 'password',
      type: 'string',
      required: false,
      secret: true,
      description: also(`Password of the ${login.toLowerCase()}.`, 'password'),
    },
    {
      name: 'ssl',
      type: 'boolean',
      required: false,
      secret: false,
      target: true,
      default: false,
      description: 'Connect over TLS and verify the server certificate.',
    },
  ];
}

const READ_ONLY: ConfigField = {
  name: 'read_only',
  type: 'boolean',
  required: false,
  secret: false,
  default: true,
  description:
    'Open the database read-only (the default). Set to false to let SQL change the database and, in DuckDB, write files (COPY … TO, EXPORT DATABASE, ATTACH); writes stay inside the organization’s file directory.',
};

describe('configuration schemas', () => {
  it('list the fields GET /api/connection_types shows', () => {
    expect(Object.fromEntries(listConnectors().map((c) => [c.type, c.configFields]))).toEqual({
      postgresql: network(5432, 'Database to connect to.', 'Role'),
      mysql: network(3306, 'Default database (schema).', 'User', true),
      sqlite: [
        {
          name: 'path',
          type: 'string',
          required: true,
          secret: false,
          description:
            'Path of an existing SQLite database file, relative to the organization’s file directory on the server ($QRUN_FILE_ROOT/<organization id>); absolute paths, `..` and symbolic links are refused.',
        },
        READ_ONLY,
      ],
      duckdb: [
        {
          name: 'path',
          type: 'string',
          required: true,
          secret: false,
          description:
            'Path of an existing DuckDB database file, relative to the organization’s file directory on the server ($QRUN_FILE_ROOT/<organization id>); absolute paths, `..` and symbolic links are refused. `:memory:` opens a new, empty in-memory database for each query. SQL reaches files in that directory only.',
        },
        READ_ONLY,
      ],
    });
  });

  it("type each engine's configuration from its schema", () => {
    expectTypeOf({ hostname: '', port: 0, database: '', username: '', ssl: false }).toMatchTypeOf<PgConfig>();
    expectTypeOf({ hostname: '', port: 0, account: '', ssl: false }).toMatchTypeOf<MysqlConfig>();
    expectTypeOf<MysqlConfig['dbname']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<MysqlConfig['passwd']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<PgConfig['password']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<PgConfig['port']>().toEqualTypeOf<number>();
    expectTypeOf<SqliteConfig>().toEqualTypeOf<DuckdbConfig>();
    expectTypeOf<SqliteConfig['read_only']>().toEqualTypeOf<boolean>();
  });
});

describe('aliases', () => {
  const spec = new ConfigSpec(
    configSchema({
      hostname: field.string({ description: 'Host.', target: true, aliases: ['host'] }),
      password: Type.Optional(
        field.string({ description: 'Password.', secret: true, aliases: ['passwd', 'pass'] }),
      ),
    }),
  );

  function rejection(input: unknown): AppError {
    try {
      spec.parse(input);
    } catch (err) {
      expect(err).toBeInstanceOf(AppError);
      return err as AppError;
    }
    throw new Error('accepted');
  }

  it("are accepted on input and stored under the field's own name", () => {
    expect(spec.parse({ host: 'db', passwd: 'secret' })).toEqual({ hostname: 'db', password: 'secret' });
    expect(spec.parse({ hostname: 'db', pass: 'secret' })).toEqual({ hostname: 'db', password: 'secret' });
  });

  it('name a field once: its name and an alias, or two aliases, together are refused', () => {
    const both = rejection({ hostname: 'db', password: 'a', passwd: 'b' });
    expect(both.message).toBe(
      'configuration.passwd names the same field as configuration.password; send only one of them.',
    );
    expect(both.metadata).toEqual({ field: 'configuration.passwd' });
    expect(rejection({ hostname: 'db', passwd: 'a', pass: 'b' }).metadata).toEqual({
      field: 'configuration.pass',
    });
  });

  it("are named in messages about their value; unknown fields list the fields' own names", () => {
    expect(rejection({ host: 5 }).message).toBe('configuration.host must be a string.');
    expect(rejection({ hostname: 'db', user: 'x' }).message).toBe(
      'configuration.user is not a field of this connection type (expected: hostname, password).',
    );
  });

  it('are not listed for the API, and a name used twice is a mistake in the schema', () => {
    expect(spec.fields.map((f) => f.name)).toEqual(['hostname', 'password']);
    expect(
      () =>
        new ConfigSpec(
          configSchema({
            a: field.string({ description: 'A.', aliases: ['b'] }),
            b: field.string({ description: 'B.' }),
          }),
        ),
    ).toThrow(/used twice/);
  });

  it('also map a stored configuration before the engine sees it', async () => {
    let seen: unknown;
    const connector = defineConnector(spec.schema, {
      type: 'test',
      name: 'Test',
      capabilities: { placeholders: 'question', fileBased: false },
      test: async (config) => {
        seen = config;
      },
      stream: () => Promise.reject(new Error('unused')),
    });
    await connector.test(
      { host: 'db', passwd: 'x' },
      { fileDir: '/nonexistent', egress: new EgressPolicy() },
    );
    expect(seen).toEqual({ hostname: 'db', password: 'x' });
  });
});
