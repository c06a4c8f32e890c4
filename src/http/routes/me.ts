import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { IdentityService } from '../../service/identity-service.js';
import { principal } from '../plugins/authentication.js';
import { Envelope } from '../schemas/common.js';

const Me = Type.Object({
  id: Type.Optional(Type.String()),
  email: Type.Optional(Type.String()),
  organization_id: Type.Union([Type.String(), Type.Null()]),
  organization_name: Type.Union([Type.String(), Type.Null()]),
  role: Type.Optional(Type.Union([Type.Literal('admin'), Type.Literal('user')])),
  is_user: Type.Boolean(),
  is_organization: Type.Boolean(),
  is_partner: Type.Boolean(),
});

export const meRoutes =
  (identity: IdentityService): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/api/me',
      { schema: { tags: ['identity'], summary: 'Who is calling', response: { 200: Envelope(Me) } } },
      async (request) => ({ data: identity.me(principal(request)) }),
    );
  };
