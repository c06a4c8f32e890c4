import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Value } from 'typebox/value';
import { parseId } from '../../core/ids.js';
import type { ConnectionService } from '../../service/connection-service.js';
import { principal } from '../plugins/authentication.js';
import { errors, noContent, TAGS } from '../route-docs.js';
import { Envelope, IdParams } from '../../wire/common.js';
import {
  Connection,
  ConnectionType,
  CreateConnection,
  SavedConnection,
  TestConnection,
  UpdateConnection,
} from '../../wire/connections.js';

const CONNECTION_EXAMPLE = {
  id: '0b6f8e62-4f1d-4c55-8a3e-7d9c2b1a0e44',
  name: 'warehouse',
  type: {
    id: 'postgresql',
    name: 'PostgreSQL',
    logo_url: null,
    operations: ['query', 'cancel', 'parameters', 'healthcheck'],
  },
  configuration: {
    hostname: 'db.internal',
    port: 5432,
    database: 'analytics',
    username: 'reader',
    password: '********',
    ssl: true,
  },
  organization_id: '7a1d3c55-9e0f-4b2a-8c6d-1f2e3a4b5c6d',
  status: 'healthy',
  status_error: null,
  saved: true,
  policies: [],
  healthcheck_interval: '1h',
  created_at: '2026-11-30T10:00:00Z',
  updated_at: '2026-11-30T10:00:00Z',
  created_by: { id: '5c2e9a10-3b4d-4e6f-8a7b-9c0d1e2f3a4b', name: 'ada@example.com', type: 'user' },
  updated_by: { id: '5c2e9a10-3b4d-4e6f-8a7b-9c0d1e2f3a4b', name: 'ada@example.com', type: 'user' },
  api_calls_last_24_hours: 42,
  parent_connection_id: null,
};
const SAVED_EXAMPLE = { ...CONNECTION_EXAMPLE, auth_code: null, auth_url: null };

/** Who may change connections: docs/SECURITY.md. */
const ADMINS_ONLY = 'Organization admins and the organization key only; role `user` gets 403.';

export const connectionRoutes =
  (connections: ConnectionService): FastifyPluginAsyncTypebox =>
  async (app) => {
    const tags = [TAGS.connections];
    app.get(
      '/api/connection_types',
      {
        schema: {
          tags,
          operationId: 'getConnectionTypes',
          summary: 'List connection types',
          description:
            'Lists all connection types supported by this deployment, each with its configuration fields ' +
            '(`fields`, and the same as JSON Schema in `configurationForm.jsonschema`), what qrun can do with ' +
            'it (`operations`) and how its SQL writes parameters (`capabilities.placeholders`).',
          response: {
            200: Envelope(Type.Array(ConnectionType), {
              description: 'Every connection type.',
              // The real answer, cut to one type.
              examples: [
                {
                  data: connections
                    .listTypes()
                    .filter((t) => t.id === 'postgresql')
                    .map((t) => Value.Clean(ConnectionType, structuredClone(t))),
                },
              ],
            }),
            ...errors(401, 429),
          },
        },
      },
      async () => ({ data: connections.listTypes() }),
    );
    app.get(
      '/api/connections',
      {
        schema: {
          tags,
          operationId: 'listConnections',
          summary: 'List connections',
          description:
            "Lists every connection in the caller's organization, with sensitive fields redacted: secrets " +
            'come back as `"********"`.',
          response: {
            200: Envelope(Type.Array(Connection), {
              description: "The organization's connections.",
              examples: [{ data: [CONNECTION_EXAMPLE] }],
            }),
            ...errors(401, { 403: 'The partner key has no organization of its own.' }, 429),
          },
        },
      },
      async (req) => ({
        data: await connections.list(principal(req)),
      }),
    );
    app.post(
      '/api/connections',
      {
        schema: {
          tags,
          operationId: 'createConnection',
          summary: 'Create a connection',
          description:
            'Creates a new connection of the specified type; `GET /api/connection_types` lists the types and ' +
            'their fields. Unless `validate` is false, qrun first connects and runs a trivial query, and ' +
            `refuses the connection when that fails (400 \`connection_invalid\`). ${ADMINS_ONLY}`,
          body: CreateConnection,
          response: {
            200: Envelope(SavedConnection, {
              description: 'The stored connection, secrets redacted.',
              examples: [{ data: SAVED_EXAMPLE }],
            }),
            ...errors(
              {
                400: 'A field is missing or invalid (`invalid_configuration`, `unknown_field`, `host_not_allowed`…), or the test failed (`connection_invalid`). Nothing was created.',
              },
              401,
              403,
              429,
            ),
          },
        },
      },
      async (req) => ({ data: await connections.create(principal(req), req.body) }),
    );
    app.post(
      '/api/connections/test',
      {
        schema: {
          tags,
          operationId: 'testConnection',
          summary: 'Test a connection configuration',
          description:
            'Connects with the configuration and runs a trivial query, without saving anything. A failure is ' +
            '400 `connection_invalid` with the database’s message (secrets removed). Every network failure ' +
            'reads the same, so the endpoint tells nothing about hosts that do not answer.',
          body: TestConnection,
          response: {
            200: Envelope(Type.Object({ status: Type.String() }), {
              description: 'The configuration works.',
              examples: [{ data: { status: 'healthy' } }],
            }),
            ...errors(
              { 400: 'The configuration is invalid, or the test failed (`connection_invalid`).' },
              401,
              {
                429: 'Too many requests, or too many tests running on this server (QRUN_MAX_CONNECTION_TESTS).',
              },
            ),
          },
        },
      },
      async (req) => ({ data: await connections.test(principal(req), req.body) }),
    );
    app.get(
      '/api/connections/:id',
      {
        schema: {
          tags,
          operationId: 'getConnection',
          summary: 'Get a connection',
          description: 'Returns a single connection by ID, with sensitive fields redacted.',
          params: IdParams,
          response: {
            200: Envelope(Connection, {
              description: 'The connection.',
              examples: [{ data: CONNECTION_EXAMPLE }],
            }),
            ...errors(400, 401, { 404: 'No such connection in your organization.' }, 429),
          },
        },
      },
      async (req) => ({
        data: await connections.get(principal(req), parseId(req.params.id, 'connection id')),
      }),
    );
    app.put(
      '/api/connections/:id',
      {
        schema: {
          tags,
          operationId: 'updateConnection',
          summary: 'Update a connection',
          description:
            'Changes a connection’s name, configuration or health check interval; fields left out keep their ' +
            'value. A `configuration` replaces the stored one whole (as in Polytomic: a full replacement), ' +
            'except that a secret sent as `"********"` keeps the stored secret, unless the target (host, port, ' +
            'database, user, TLS) changes: then the secret must be sent again (400 `secret_required`), so a ' +
            `stored password never goes to a new destination. ${ADMINS_ONLY}`,
          params: IdParams,
          body: UpdateConnection,
          response: {
            200: Envelope(SavedConnection, {
              description: 'The stored connection, secrets redacted.',
              examples: [{ data: SAVED_EXAMPLE }],
            }),
            ...errors(
              {
                400: 'A field is invalid, a secret is needed for the new target (`secret_required`), or the test failed.',
              },
              401,
              403,
              { 404: 'No such connection in your organization.' },
              429,
            ),
          },
        },
      },
      async (req) => ({
        data: await connections.update(principal(req), parseId(req.params.id, 'connection id'), req.body),
      }),
    );
    app.delete(
      '/api/connections/:id',
      {
        schema: {
          tags,
          operationId: 'removeConnection',
          summary: 'Delete a connection',
          description: `Deletes a connection and its stored secrets. Queries already submitted on it end failed. ${ADMINS_ONLY}`,
          params: IdParams,
          response: {
            204: noContent('Deleted.'),
            ...errors(400, 401, 403, { 404: 'No such connection in your organization.' }, 429),
          },
        },
      },
      async (req, reply) => {
        await connections.delete(principal(req), parseId(req.params.id, 'connection id'));
        return reply.code(204).send();
      },
    );
  };
