import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { parseId } from '../../core/ids.js';
import type { IdentityService } from '../../service/identity-service.js';
import { principal } from '../plugins/authentication.js';
import { Envelope } from '../../wire/common.js';
import {
  CreatedKey,
  KeyInfo,
  Organization,
  OrganizationInput,
  User,
  UserInput,
  UserUpdate,
} from '../../wire/identity.js';

const OrgParams = Type.Object({ org_id: Type.String() });
const UserParams = Type.Object({ org_id: Type.String(), id: Type.String() });
const OrgKeyParams = Type.Object({ org_id: Type.String(), key_id: Type.String() });
const UserKeyParams = Type.Object({ org_id: Type.String(), id: Type.String(), key_id: Type.String() });

/** /api/organizations/...: organizations (partner), their users, and API keys. */
export const organizationRoutes =
  (identity: IdentityService): FastifyPluginAsyncTypebox =>
  async (app) => {
    const orgTags = { tags: ['organizations'] };
    app.get(
      '/api/organizations',
      { schema: { ...orgTags, response: { 200: Envelope(Type.Array(Organization)) } } },
      async (req) => ({
        data: await identity.listOrganizations(principal(req)),
      }),
    );
    app.post(
      '/api/organizations',
      { schema: { ...orgTags, body: OrganizationInput, response: { 200: Envelope(Organization) } } },
      async (req) => ({ data: await identity.createOrganization(principal(req), req.body) }),
    );
    app.get(
      '/api/organizations/:id',
      {
        schema: {
          ...orgTags,
          params: Type.Object({ id: Type.String() }),
          response: { 200: Envelope(Organization) },
        },
      },
      async (req) => ({ data: await identity.getOrganization(principal(req), parseId(req.params.id)) }),
    );
    app.put(
      '/api/organizations/:id',
      {
        schema: {
          ...orgTags,
          params: Type.Object({ id: Type.String() }),
          body: OrganizationInput,
          response: { 200: Envelope(Organization) },
        },
      },
      async (req) => ({
        data: await identity.updateOrganization(principal(req), parseId(req.params.id), req.body),
      }),
    );
    app.delete(
      '/api/organizations/:id',
      { schema: { ...orgTags, params: Type.Object({ id: Type.String() }) } },
      async (req, reply) => {
        await identity.deleteOrganization(principal(req), parseId(req.params.id));
        return reply.code(204).send();
      },
    );

    const userTags = { tags: ['users'] };
    app.get(
      '/api/organizations/:org_id/users',
      { schema: { ...userTags, params: OrgParams, response: { 200: Envelope(Type.Array(User)) } } },
      async (req) => ({
        data: await identity.listUsers(principal(req), parseId(req.params.org_id, 'organization id')),
      }),
    );
    app.post(
      '/api/organizations/:org_id/users',
      { schema: { ...userTags, params: OrgParams, body: UserInput, response: { 200: Envelope(User) } } },
      async (req) => ({
        data: await identity.createUser(
          principal(req),
          parseId(req.params.org_id, 'organization id'),
          req.body,
        ),
      }),
    );
    app.get(
      '/api/organizations/:org_id/users/:id',
      { schema: { ...userTags, params: UserParams, response: { 200: Envelope(User) } } },
      async (req) => ({
        data: await identity.getUser(
          principal(req),
          parseId(req.params.org_id, 'organization id'),
          parseId(req.params.id),
        ),
      }),
    );
    app.put(
      '/api/organizations/:org_id/users/:id',
      { schema: { ...userTags, params: UserParams, body: UserUpdate, response: { 200: Envelope(User) } } },
      async (req) => ({
        data: await identity.updateUser(
          principal(req),
          parseId(req.params.org_id, 'organization id'),
          parseId(req.params.id),
          req.body,
        ),
      }),
    );
    app.delete(
      '/api/organizations/:org_id/users/:id',
      { schema: { ...userTags, params: UserParams } },
      async (req, reply) => {
        await identity.deleteUser(
          principal(req),
          parseId(req.params.org_id, 'organization id'),
          parseId(req.params.id),
        );
        return reply.code(204).send();
      },
    );

    const keyTags = { tags: ['keys'] };
    app.post(
      '/api/organizations/:org_id/users/:id/keys',
      { schema: { ...keyTags, params: UserParams, response: { 200: Envelope(CreatedKey) } } },
      async (req) => ({
        data: await identity.createUserKey(
          principal(req),
          parseId(req.params.org_id, 'organization id'),
          parseId(req.params.id),
        ),
      }),
    );
    app.get(
      '/api/organizations/:org_id/users/:id/keys',
      { schema: { ...keyTags, params: UserParams, response: { 200: Envelope(Type.Array(KeyInfo)) } } },
      async (req) => ({
        data: await identity.listUserKeys(
          principal(req),
          parseId(req.params.org_id, 'organization id'),
          parseId(req.params.id),
        ),
      }),
    );
    app.delete(
      '/api/organizations/:org_id/users/:id/keys/:key_id',
      { schema: { ...keyTags, params: UserKeyParams } },
      async (req, reply) => {
        await identity.revokeUserKey(
          principal(req),
          parseId(req.params.org_id, 'organization id'),
          parseId(req.params.id),
          parseId(req.params.key_id, 'key id'),
        );
        return reply.code(204).send();
      },
    );
    app.post(
      '/api/organizations/:org_id/keys',
      { schema: { ...keyTags, params: OrgParams, response: { 200: Envelope(CreatedKey) } } },
      async (req) => ({
        data: await identity.createOrganizationKey(
          principal(req),
          parseId(req.params.org_id, 'organization id'),
        ),
      }),
    );
    app.get(
      '/api/organizations/:org_id/keys',
      { schema: { ...keyTags, params: OrgParams, response: { 200: Envelope(Type.Array(KeyInfo)) } } },
      async (req) => ({
        data: await identity.listOrganizationKeys(
          principal(req),
          parseId(req.params.org_id, 'organization id'),
        ),
      }),
    );
    app.delete(
      '/api/organizations/:org_id/keys/:key_id',
      { schema: { ...keyTags, params: OrgKeyParams } },
      async (req, reply) => {
        await identity.revokeOrganizationKey(
          principal(req),
          parseId(req.params.org_id, 'organization id'),
          parseId(req.params.key_id, 'key id'),
        );
        return reply.code(204).send();
      },
    );
  };
