import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { parseId } from '../../core/ids.js';
import type { ConnectionService } from '../../service/connection-service.js';
import { principal } from '../plugins/authentication.js';
import { Envelope, IdParams } from '../../wire/common.js';
import {
  Connection,
  ConnectionType,
  CreateConnection,
  TestConnection,
  UpdateConnection,
} from '../../wire/connections.js';

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
