import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { parseId } from '../../core/ids.js';
import type { IdentityService } from '../../service/identity-service.js';
import { principal } from '../plugins/authentication.js';
import { errors, noContent, TAGS } from '../route-docs.js';
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

const ORG_ID = '7a1d3c55-9e0f-4b2a-8c6d-1f2e3a4b5c6d';
const USER_ID = '5c2e9a10-3b4d-4e6f-8a7b-9c0d1e2f3a4b';
const KEY_ID = '9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a';
const AT = '2026-11-30T10:00:00Z';
const ORG = { id: ORG_ID, name: 'Acme', created_at: AT, updated_at: AT };
const USER = {
  id: USER_ID,
  organization_id: ORG_ID,
  email: 'ada@example.com',
  role: 'admin',
  created_at: AT,
  updated_at: AT,
};
const CREATED_KEY = { id: KEY_ID, value: 'qrun_u_kT3f9…(shown once)' };
const KEY_INFO = { id: KEY_ID, kind: 'user', hint: 'qrun_u_kT3f', created_at: AT, revoked_at: null };

const PARTNER_ONLY = 'The partner key only (`QRUN_PARTNER_KEY`); other keys get 403.';
const MANAGERS =
  'The partner key, or an admin user of this organization; other keys of the organization get 403, and keys of ' +
  'other organizations 404.';
const NO_ORG = { 404: 'No such organization (or not yours).' };
const NO_USER = { 404: 'No such organization or user (or not yours).' };
const NO_KEY = { 404: 'No such organization, user or key (or not yours).' };

const OrgParams = Type.Object({ org_id: Type.String() });
const UserParams = Type.Object({ org_id: Type.String(), id: Type.String() });
const OrgKeyParams = Type.Object({ org_id: Type.String(), key_id: Type.String() });
const UserKeyParams = Type.Object({ org_id: Type.String(), id: Type.String(), key_id: Type.String() });

/** /api/organizations/...: organizations (partner), their users, and API keys. */
export const organizationRoutes =
  (identity: IdentityService): FastifyPluginAsyncTypebox =>
  async (app) => {
    const orgTags = [TAGS.organizations];
    app.get(
      '/api/organizations',
      {
        schema: {
          tags: orgTags,
          operationId: 'listOrganizations',
          summary: 'List organizations',
          description: `Every organization (tenant) of this server. ${PARTNER_ONLY}`,
          response: {
            200: Envelope(Type.Array(Organization), { examples: [{ data: [ORG] }] }),
            ...errors(401, 403, 429),
          },
        },
      },
      async (req) => ({
        data: await identity.listOrganizations(principal(req)),
      }),
    );
    app.post(
      '/api/organizations',
      {
        schema: {
          tags: orgTags,
          operationId: 'createOrganization',
          summary: 'Create an organization',
          description: `Creates an organization; then create its users and keys. ${PARTNER_ONLY}`,
          body: OrganizationInput,
          response: {
            200: Envelope(Organization, { examples: [{ data: ORG }] }),
            ...errors(400, 401, 403, 429),
          },
        },
      },
      async (req) => ({ data: await identity.createOrganization(principal(req), req.body) }),
    );
    app.get(
      '/api/organizations/:id',
      {
        schema: {
          tags: orgTags,
          operationId: 'getOrganization',
          summary: 'Get an organization',
          description: PARTNER_ONLY,
          params: Type.Object({ id: Type.String() }),
          response: {
            200: Envelope(Organization, { examples: [{ data: ORG }] }),
            ...errors(400, 401, 403, NO_ORG, 429),
          },
        },
      },
      async (req) => ({ data: await identity.getOrganization(principal(req), parseId(req.params.id)) }),
    );
    app.put(
      '/api/organizations/:id',
      {
        schema: {
          tags: orgTags,
          operationId: 'updateOrganization',
          summary: 'Rename an organization',
          description: PARTNER_ONLY,
          params: Type.Object({ id: Type.String() }),
          body: OrganizationInput,
          response: {
            200: Envelope(Organization, { examples: [{ data: ORG }] }),
            ...errors(400, 401, 403, NO_ORG, 429),
          },
        },
      },
      async (req) => ({
        data: await identity.updateOrganization(principal(req), parseId(req.params.id), req.body),
      }),
    );
    app.delete(
      '/api/organizations/:id',
      {
        schema: {
          tags: orgTags,
          operationId: 'deleteOrganization',
          summary: 'Delete an organization',
          description:
            'Deletes the organization with its users, keys, connections and queries; its stored results are ' +
            `deleted in the background. ${PARTNER_ONLY}`,
          params: Type.Object({ id: Type.String() }),
          response: { 204: noContent('Deleted.'), ...errors(400, 401, 403, NO_ORG, 429) },
        },
      },
      async (req, reply) => {
        await identity.deleteOrganization(principal(req), parseId(req.params.id));
        return reply.code(204).send();
      },
    );

    const userTags = [TAGS.users];
    app.get(
      '/api/organizations/:org_id/users',
      {
        schema: {
          tags: userTags,
          operationId: 'listUsers',
          summary: 'List users',
          description: `The organization's users. ${MANAGERS}`,
          params: OrgParams,
          response: {
            200: Envelope(Type.Array(User), { examples: [{ data: [USER] }] }),
            ...errors(400, 401, 403, NO_ORG, 429),
          },
        },
      },
      async (req) => ({
        data: await identity.listUsers(principal(req), parseId(req.params.org_id, 'organization id')),
      }),
    );
    app.post(
      '/api/organizations/:org_id/users',
      {
        schema: {
          tags: userTags,
          operationId: 'createUser',
          summary: 'Create a user',
          description: `Adds a user (role \`user\` unless given); give them a key with the keys endpoint. ${MANAGERS}`,
          params: OrgParams,
          body: UserInput,
          response: {
            200: Envelope(User, { examples: [{ data: USER }] }),
            ...errors(
              { 400: 'The email is invalid or already used in this organization.' },
              401,
              403,
              NO_ORG,
              429,
            ),
          },
        },
      },
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
      {
        schema: {
          tags: userTags,
          operationId: 'getUser',
          summary: 'Get a user',
          description: MANAGERS,
          params: UserParams,
          response: {
            200: Envelope(User, { examples: [{ data: USER }] }),
            ...errors(400, 401, 403, NO_USER, 429),
          },
        },
      },
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
      {
        schema: {
          tags: userTags,
          operationId: 'updateUser',
          summary: 'Update a user',
          description: `Changes a user's email or role. ${MANAGERS}`,
          params: UserParams,
          body: UserUpdate,
          response: {
            200: Envelope(User, { examples: [{ data: USER }] }),
            ...errors(400, 401, 403, NO_USER, 429),
          },
        },
      },
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
      {
        schema: {
          tags: userTags,
          operationId: 'deleteUser',
          summary: 'Delete a user',
          description: `Deletes the user; their keys stop working at once. ${MANAGERS}`,
          params: UserParams,
          response: { 204: noContent('Deleted.'), ...errors(400, 401, 403, NO_USER, 429) },
        },
      },
      async (req, reply) => {
        await identity.deleteUser(
          principal(req),
          parseId(req.params.org_id, 'organization id'),
          parseId(req.params.id),
        );
        return reply.code(204).send();
      },
    );

    const keyTags = [TAGS.keys];
    app.post(
      '/api/organizations/:org_id/users/:id/keys',
      {
        schema: {
          tags: keyTags,
          operationId: 'createUserKey',
          summary: "Create a user's API key",
          description: `A new key for the user, shown only in this response (qrun keeps only its hash). ${MANAGERS}`,
          params: UserParams,
          response: {
            200: Envelope(CreatedKey, { examples: [{ data: CREATED_KEY }] }),
            ...errors(400, 401, 403, NO_USER, 429),
          },
        },
      },
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
      {
        schema: {
          tags: keyTags,
          operationId: 'listUserKeys',
          summary: "List a user's API keys",
          description: `The user's keys, by id and hint (never the key itself). ${MANAGERS}`,
          params: UserParams,
          response: {
            200: Envelope(Type.Array(KeyInfo), { examples: [{ data: [KEY_INFO] }] }),
            ...errors(400, 401, 403, NO_USER, 429),
          },
        },
      },
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
      {
        schema: {
          tags: keyTags,
          operationId: 'revokeUserKey',
          summary: "Revoke a user's API key",
          description: `The key stops working at once, on every api process. ${MANAGERS}`,
          params: UserKeyParams,
          response: { 204: noContent('Revoked.'), ...errors(400, 401, 403, NO_KEY, 429) },
        },
      },
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
      {
        schema: {
          tags: keyTags,
          operationId: 'createOrganizationKey',
          summary: 'Create an organization API key',
          description:
            'A key that acts for the whole organization (HTTP Basic user name, empty password, as Polytomic’s ' +
            `organization keys), shown only in this response. ${MANAGERS}`,
          params: OrgParams,
          response: {
            200: Envelope(CreatedKey, {
              examples: [{ data: { ...CREATED_KEY, value: 'qrun_o_Zp81…(shown once)' } }],
            }),
            ...errors(400, 401, 403, NO_ORG, 429),
          },
        },
      },
      async (req) => ({
        data: await identity.createOrganizationKey(
          principal(req),
          parseId(req.params.org_id, 'organization id'),
        ),
      }),
    );
    app.get(
      '/api/organizations/:org_id/keys',
      {
        schema: {
          tags: keyTags,
          operationId: 'listOrganizationKeys',
          summary: 'List organization API keys',
          description: `The organization's own keys, by id and hint. ${MANAGERS}`,
          params: OrgParams,
          response: {
            200: Envelope(Type.Array(KeyInfo), {
              examples: [{ data: [{ ...KEY_INFO, kind: 'organization', hint: 'qrun_o_Zp81' }] }],
            }),
            ...errors(400, 401, 403, NO_ORG, 429),
          },
        },
      },
      async (req) => ({
        data: await identity.listOrganizationKeys(
          principal(req),
          parseId(req.params.org_id, 'organization id'),
        ),
      }),
    );
    app.delete(
      '/api/organizations/:org_id/keys/:key_id',
      {
        schema: {
          tags: keyTags,
          operationId: 'revokeOrganizationKey',
          summary: 'Revoke an organization API key',
          description: `The key stops working at once, on every api process. ${MANAGERS}`,
          params: OrgKeyParams,
          response: { 204: noContent('Revoked.'), ...errors(400, 401, 403, NO_KEY, 429) },
        },
      },
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
