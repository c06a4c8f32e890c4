import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { TAG_DESCRIPTIONS } from '../route-docs.js';

/**
 * The OpenAPI 3.1 document is generated from the same TypeBox schemas that validate requests,
 * so the two cannot drift apart. Must be registered before the routes.
 */
export async function registerOpenApi(app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    // Shared schemas keep their own names (`Error`) in components.schemas instead of `def-0`.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'qrun',
        version,
        description:
          'Asynchronous SQL query runner, wire-compatible with the Polytomic Query Runner API. ' +
          'Errors are {status, message, key, metadata?}.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      // Relative, so "Try it out" at /api/docs calls the server that serves the page, whatever its address.
      servers: [{ url: '/', description: 'The qrun server that serves this document' }],
      tags: [...TAG_DESCRIPTIONS],
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'A user API key (qrun_u_…) or the partner key (qrun_p_…).',
          },
          basic: {
            type: 'http',
            scheme: 'basic',
            description: 'An organization API key (qrun_o_…) as the user name, empty password.',
          },
        },
      },
      security: [{ bearer: [] }, { basic: [] }],
    },
  });
  app.get('/api/openapi.json', { config: { public: true }, schema: { hide: true } }, async () =>
    app.swagger(),
  );
}
