import { Type, type Static } from 'typebox';
import { Timestamp } from './common.js';

/** Stored connections and connection types, as they travel: the routes validate and document with these, and
 * ConnectionService returns their Static types. */

export const ConfigValue = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]);
/** Field-level checks depend on the type, so they happen in ConnectionService, naming the field. */
export const Configuration = Type.Record(Type.String(), ConfigValue, {
  description:
    'The fields listed by GET /api/connection_types for this type. Secrets come back as "********".',
});

/** What qrun can do with connections of a type (Polytomic's `operations` of a connection type). */
export const Operations = Type.Array(Type.String(), {
  description:
    'What qrun does with connections of this type: `query` (run SQL through the query runner), `cancel` ' +
    '(stop a running statement on the database itself), `parameters` (bind positional parameters, written ' +
    'as `capabilities.placeholders` of GET /api/connection_types says) and `healthcheck` (the connection ' +
    'test, on save and every `healthcheck_interval`).',
  examples: [['query', 'cancel', 'parameters', 'healthcheck']],
});

/** Who created or last changed something: Polytomic's OutputActor. */
export const Actor = Type.Object(
  {
    id: Type.String({ description: "The user's id, or the organization's for the organization key." }),
    name: Type.String({ description: "The user's email, or the organization's name, as it was then." }),
    type: Type.Union([Type.Literal('user'), Type.Literal('organization')], {
      description: '`user` (a user key) or `organization` (the organization key).',
    }),
  },
  { description: 'Who made the change: a user, or the organization key.' },
);
export type Actor = Static<typeof Actor>;

const HEALTHCHECK_INTERVAL =
  'How often qrun checks the connection (connects and runs a trivial query), updating `status` and ' +
  '`status_error`: a Go duration as Polytomic writes it (`30m`, `3h30m`, `24h`), from 1m to 720h, answered ' +
  'in its shortest form; null: no periodic check.';

const connectionProperties = {
  id: Type.String(),
  name: Type.String(),
  type: Type.Object({
    id: Type.String(),
    name: Type.String(),
    logo_url: Type.Null({ description: 'qrun has no logos.' }),
    operations: Operations,
  }),
  configuration: Type.Record(Type.String(), Type.Unknown()),
  organization_id: Type.String(),
  status: Type.String({
    description:
      'What the last test found: `healthy`, `unhealthy` (a periodic check failed: see `status_error`) or ' +
      '`untested` (saved with `validate: false` and not checked since).',
  }),
  status_error: Type.Union([Type.String(), Type.Null()], {
    description: "Why the last periodic check failed (the database's message, secrets removed); else null.",
  }),
  saved: Type.Boolean({ description: 'Always true: qrun answers only for stored connections.' }),
  policies: Type.Array(Type.String(), {
    description: "Always empty: access follows the caller's role (docs/SECURITY.md), not policies.",
  }),
  healthcheck_interval: Type.Union([Type.String(), Type.Null()], { description: HEALTHCHECK_INTERVAL }),
  created_at: Timestamp,
  updated_at: Timestamp,
  created_by: Type.Union([Actor, Type.Null()], {
    description: 'Who created the connection; null for connections created before qrun recorded it.',
  }),
  updated_by: Type.Union([Actor, Type.Null()], {
    description: 'Who last changed its name, configuration or health check interval; null as for created_by.',
  }),
  api_calls_last_24_hours: Type.Integer({
    minimum: 0,
    description: 'Queries submitted on this connection in the last 24 hours, by anyone of the organization.',
  }),
  parent_connection_id: Type.Null({ description: 'Always null: qrun has no shared connections.' }),
};

/** A stored connection, as GET /api/connections and GET /api/connections/{id} answer: Polytomic's ConnectionResponseSchema. */
export const Connection = Type.Object(connectionProperties);

/** After POST and PUT: Polytomic's CreateConnectionResponseSchema, every field of the stored connection and its OAuth pair. */
export const SavedConnection = Type.Object({
  ...connectionProperties,
  auth_code: Type.Null({ description: 'Always null: no qrun connection type authenticates with OAuth.' }),
  auth_url: Type.Null({ description: 'Always null, as auth_code.' }),
});

const HealthcheckIntervalInput = Type.Optional(
  Type.Union([Type.String({ maxLength: 64 }), Type.Null()], { description: HEALTHCHECK_INTERVAL }),
);

export const CreateConnection = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 255 }),
    type: Type.String(),
    configuration: Configuration,
    validate: Type.Optional(
      Type.Boolean({ default: true, description: 'Connect and run a trivial query first.' }),
    ),
    healthcheck_interval: HealthcheckIntervalInput,
  },
  {
    additionalProperties: false,
    examples: [
      {
        name: 'warehouse',
        type: 'postgresql',
        configuration: {
          hostname: 'db.internal',
          port: 5432,
          database: 'analytics',
          username: 'reader',
          password: 's3cret',
          ssl: true,
        },
        healthcheck_interval: '1h',
      },
    ],
  },
);

export const UpdateConnection = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    type: Type.Optional(Type.String()),
    configuration: Type.Optional(Configuration),
    validate: Type.Optional(Type.Boolean({ default: true })),
    healthcheck_interval: HealthcheckIntervalInput,
  },
  {
    additionalProperties: false,
    examples: [
      {
        name: 'warehouse (replica)',
        configuration: {
          hostname: 'replica.internal',
          port: 5432,
          database: 'analytics',
          username: 'reader',
          password: 's3cret',
          ssl: true,
        },
      },
    ],
  },
);

export const TestConnection = Type.Object(
  { type: Type.String(), configuration: Configuration },
  {
    additionalProperties: false,
    examples: [
      {
        type: 'mysql',
        configuration: { hostname: 'mysql.internal', account: 'reader', passwd: 's3cret', dbname: 'shop' },
      },
    ],
  },
);

export const ConnectionType = Type.Object({
  id: Type.String(),
  name: Type.String(),
  logo_url: Type.Null({ description: 'qrun has no logos.' }),
  operations: Operations,
  fields: Type.Array(
    Type.Object({
      name: Type.String(),
      type: Type.String(),
      required: Type.Boolean(),
      secret: Type.Boolean(),
      default: Type.Optional(Type.Union([Type.String(), Type.Number(), Type.Boolean()])),
      description: Type.String(),
    }),
  ),
  use_oauth: Type.Boolean({ description: 'Always false: no qrun connection type authenticates with OAuth.' }),
  configurationForm: Type.Object(
    {
      jsonschema: Type.Unknown({ description: 'The JSON Schema of `configuration` (the same as `fields`).' }),
    },
    { description: "Polytomic's form of the configuration: its JSON Schema." },
  ),
  capabilities: Type.Object({
    source: Type.Boolean({ description: 'Always true: qrun reads from connections (queries).' }),
    destination: Type.Boolean({ description: 'Always false: qrun writes to no connection.' }),
    enrichment: Type.Boolean({ description: 'Always false.' }),
    orchestration: Type.Boolean({ description: 'Always false.' }),
    placeholders: Type.Union([Type.Literal('dollar'), Type.Literal('question')], {
      description: 'How positional parameters are written in the SQL: `$1, $2` (dollar) or `?` (question).',
    }),
    file_based: Type.Boolean({
      description: "The configuration names a file in the organization's directory, not a network host.",
    }),
  }),
});

export type Connection = Static<typeof Connection>;
export type SavedConnection = Static<typeof SavedConnection>;
export type ConnectionType = Static<typeof ConnectionType>;
