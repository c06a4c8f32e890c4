import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { IdentityService } from '../../service/identity-service.js';
import { principal } from '../plugins/authentication.js';
import { Envelope } from '../../wire/common.js';
import { Me } from '../../wire/identity.js';

export const meRoutes =
  (identity: IdentityService): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/api/me',
      { schema: { tags: ['identity'], summary: 'Who is calling', response: { 200: Envelope(Me) } } },
      async (request) => ({ data: identity.me(principal(request)) }),
    );
  };
