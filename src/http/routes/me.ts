import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { IdentityService } from '../../service/identity-service.js';
import { principal } from '../plugins/authentication.js';
import { errors, TAGS } from '../route-docs.js';
import { Envelope } from '../../wire/common.js';
import { Me } from '../../wire/identity.js';

export const meRoutes =
  (identity: IdentityService): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/api/me',
      {
        schema: {
          tags: [TAGS.identity],
          operationId: 'getIdentity',
          summary: 'Get the caller’s identity',
          description:
            'Returns information about the authenticated caller and, if applicable, the organization they are ' +
            'scoped to: a user key gives the user and role, an organization key the organization, the partner ' +
            'key neither.',
          response: {
            200: Envelope(Me, {
              examples: [
                {
                  data: {
                    id: '5c2e9a10-3b4d-4e6f-8a7b-9c0d1e2f3a4b',
                    email: 'ada@example.com',
                    organization_id: '7a1d3c55-9e0f-4b2a-8c6d-1f2e3a4b5c6d',
                    organization_name: 'Acme',
                    role: 'admin',
                    is_user: true,
                    is_organization: false,
                    is_partner: false,
                    is_system: false,
                  },
                },
              ],
            }),
            ...errors(401, 429),
          },
        },
      },
      async (request) => ({ data: identity.me(principal(request)) }),
    );
  };
