import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { parseId } from '../../core/ids.js';
import type { ConnectionService } from '../../service/connection-service.js';
import { principal } from '../plugins/authentication.js';
import { Envelope, IdParams, Timestamp } from '../schemas/common.js';

const ConfigValue = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]);
/** Field-level checks depend on the type, so they happen in ConnectionService, naming the field. */
const Configuration = Type.Record(Type.String(), ConfigValue, {
  description:
    'The fields listed by GET /api/connection_types for this type. Secrets come back as "********".',
});

const Connection = Type.Object({
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

const CreateConnection = Type.Object(
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

const UpdateConnection = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    type: Type.Optional(Type.String()),
    configuration: Type.Optional(Configuration),
    validate: Type.Optional(Type.Boolean({ default: true })),
  },
  { additionalProperties: false },
);

const TestConnection = Type.Object(
  { type: Type.String(), configuration: Configuration },
  { additionalProperties: false },
);

const ConnectionType = Type.Object({
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
});

export const connectionRoutes =
  (connections: ConnectionService): FastifyPluginAsyncTypebox =>
  async (app) => {
    const tags = ['connections'];
    app.get(
      '/api/connection_types',
      {
        schema: {
          tags,
          summary: 'Supported database types and their fields',
          response: { 200: Envelope(Type.Array(ConnectionType)) },
        },
      },
      async () => ({ data: connections.listTypes() }),
    );
    app.get(
      '/api/connections',
      { schema: { tags, response: { 200: Envelope(Type.Array(Connection)) } } },
      async (req) => ({
        data: await connections.list(principal(req)),
      }),
    );
    app.post(
      '/api/connections',
      { schema: { tags, body: CreateConnection, response: { 200: Envelope(Connection) } } },
      async (req) => ({ data: await connections.create(principal(req), req.body) }),
    );
    app.post(
      '/api/connections/test',
      {
        schema: {
          tags,
          summary: 'Check a configuration without saving it',
          body: TestConnection,
          response: { 200: Envelope(Type.Object({ status: Type.String() })) },
        },
      },
      async (req) => ({ data: await connections.test(principal(req), req.body) }),
    );
    app.get(
      '/api/connections/:id',
      { schema: { tags, params: IdParams, response: { 200: Envelope(Connection) } } },
      async (req) => ({
        data: await connections.get(principal(req), parseId(req.params.id, 'connection id')),
      }),
    );
    app.put(
      '/api/connections/:id',
      { schema: { tags, params: IdParams, body: UpdateConnection, response: { 200: Envelope(Connection) } } },
      async (req) => ({
        data: await connections.update(principal(req), parseId(req.params.id, 'connection id'), req.body),
      }),
    );
    app.delete('/api/connections/:id', { schema: { tags, params: IdParams } }, async (req, reply) => {
      await connections.delete(principal(req), parseId(req.params.id, 'connection id'));
      return reply.code(204).send();
    });
  };
