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

export const Connection = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.Object({ id: Type.String(), name: Type.String() }),
  configuration: Type.Record(Type.String(), Type.Unknown()),
  organization_id: Type.String(),
  status: Type.String(),
  status_error: Type.Optional(Type.String()),
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const CreateConnection = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 255 }),
    type: Type.String(),
    configuration: Configuration,
    validate: Type.Optional(
      Type.Boolean({ default: true, description: 'Connect and run a trivial query first.' }),
    ),
  },
  { additionalProperties: false },
);

export const UpdateConnection = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    type: Type.Optional(Type.String()),
    configuration: Type.Optional(Configuration),
    validate: Type.Optional(Type.Boolean({ default: true })),
  },
  { additionalProperties: false },
);

export const TestConnection = Type.Object(
  { type: Type.String(), configuration: Configuration },
  { additionalProperties: false },
);

export const ConnectionType = Type.Object({
  id: Type.String(),
  name: Type.String(),
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
  capabilities: Type.Object({
    placeholders: Type.Union([Type.Literal('dollar'), Type.Literal('question')], {
      description: 'How positional parameters are written in the SQL: `$1, $2` (dollar) or `?` (question).',
    }),
    file_based: Type.Boolean({
      description: "The configuration names a file in the organization's directory, not a network host.",
    }),
  }),
});

export type Connection = Static<typeof Connection>;
export type ConnectionType = Static<typeof ConnectionType>;
