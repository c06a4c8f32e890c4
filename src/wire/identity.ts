import { Type, type Static } from 'typebox';
import { Timestamp } from './common.js';

/** Organizations, their users and API keys, as they travel: the routes validate and document with these, and
 * IdentityService returns their Static types. */

export const Organization = Type.Object({
  id: Type.String(),
  name: Type.String(),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type Organization = Static<typeof Organization>;

export const OrganizationInput = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 255 }) },
  { additionalProperties: false },
);

export const Role = Type.Union([Type.Literal('admin'), Type.Literal('user')]);
export type Role = Static<typeof Role>;

export const User = Type.Object({
  id: Type.String(),
  organization_id: Type.String(),
  email: Type.String(),
  role: Role,
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type User = Static<typeof User>;

export const UserInput = Type.Object(
  { email: Type.String({ maxLength: 320 }), role: Type.Optional(Role) },
  { additionalProperties: false },
);
export const UserUpdate = Type.Object(
  { email: Type.Optional(Type.String({ maxLength: 320 })), role: Type.Optional(Role) },
  { additionalProperties: false },
);

/** A freshly made key: the only moment its value exists outside the caller's hands. */
export const CreatedKey = Type.Object({
  id: Type.String({ description: 'Use it to revoke the key.' }),
  value: Type.String({ description: 'The key itself. Shown only in this response; store it now.' }),
});
export type CreatedKey = Static<typeof CreatedKey>;

export const KeyInfo = Type.Object({
  id: Type.String(),
  kind: Type.Union([Type.Literal('user'), Type.Literal('organization'), Type.Literal('partner')]),
  hint: Type.String({ description: 'The first characters of the key, to tell keys apart.' }),
  created_at: Timestamp,
  revoked_at: Type.Union([Timestamp, Type.Null()]),
});
export type KeyInfo = Static<typeof KeyInfo>;

/** GET /api/me: who is calling. */
export const Me = Type.Object({
  id: Type.Optional(Type.String()),
  email: Type.Optional(Type.String()),
  organization_id: Type.Union([Type.String(), Type.Null()]),
  organization_name: Type.Union([Type.String(), Type.Null()]),
  role: Type.Optional(Role),
  is_user: Type.Boolean(),
  is_organization: Type.Boolean(),
  is_partner: Type.Boolean(),
  is_system: Type.Boolean({ description: 'Always false: qrun has no system callers.' }),
});
export type Me = Static<typeof Me>;
