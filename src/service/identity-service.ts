import { generateKey, hashKey, keyHint, type KeyKind } from '../auth/api-keys.js';
import type { Principal } from '../auth/principal.js';
import { badRequest, conflict, forbidden, notFound, rejectNul } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { systemClock, toWireTime, type Clock } from '../core/time.js';
import type { ApiKeyRow, ApiKeysRepository } from '../store/repositories/api-keys.js';
import type { OrganizationRow, OrganizationsRepository } from '../store/repositories/organizations.js';
import type { UserRow, UsersRepository } from '../store/repositories/users.js';
import type { CreatedKey, KeyInfo, Me, Organization, User } from '../wire/identity.js';
import { checkName } from './validation.js';

const EMAIL_RE = /^[^\s@]+@[^\s@]+$/;

/**
 * Organizations, users and API keys, with the rules of who may do what:
 * organizations are the partner's; users and keys are the partner's or an admin user's of that organization.
 */
export class IdentityService {
  constructor(
    private readonly organizations: OrganizationsRepository,
    private readonly users: UsersRepository,
    private readonly keys: ApiKeysRepository,
    /** Called after any change that can alter or end what a key resolves to (the authenticator's cache). */
    private readonly onIdentityChange: () => void = () => undefined,
    private readonly now: Clock = systemClock,
  ) {}

  me(p: Principal): Me {
    switch (p.kind) {
      case 'partner':
        return {
          organization_id: null,
          organization_name: null,
          is_user: false,
          is_organization: false,
          is_partner: true,
          is_system: false,
        };
      case 'organization':
        return {
          organization_id: p.organizationId,
          organization_name: p.organizationName,
          is_user: false,
          is_organization: true,
          is_partner: false,
          is_system: false,
        };
      case 'user':
        return {
          id: p.userId,
          email: p.email,
          organization_id: p.organizationId,
          organization_name: p.organizationName,
          role: p.role,
          is_user: true,
          is_organization: false,
          is_partner: false,
          is_system: false,
        };
    }
  }

  // ---- organizations (partner only) ----

  async listOrganizations(p: Principal): Promise<Organization[]> {
    requirePartner(p);
    return (await this.organizations.list()).map(toOrganization);
  }

  async getOrganization(p: Principal, id: string): Promise<Organization> {
    requirePartner(p);
    return toOrganization(await this.loadOrganization(id));
  }

  async createOrganization(p: Principal | 'system', input: { name: string }): Promise<Organization> {
    if (p !== 'system') requirePartner(p);
    const name = checkName(input.name);
    if (await this.organizations.findByName(name)) {
      throw conflict('organization_exists', `An organization named "${name}" already exists.`);
    }
    const now = this.now();
    const row: OrganizationRow = { id: newId(), name, created_at: now, updated_at: now };
    await this.organizations.insert(row);
    return toOrganization(row);
  }

  async updateOrganization(p: Principal, id: string, input: { name: string }): Promise<Organization> {
    requirePartner(p);
    const org = await this.loadOrganization(id);
    const name = checkName(input.name);
    const other = await this.organizations.findByName(name);
    if (other && other.id !== id) {
      throw conflict('organization_exists', `An organization named "${name}" already exists.`);
    }
    const now = this.now();
    await this.organizations.rename(id, name, now);
    this.onIdentityChange();
    return toOrganization({ ...org, name, updated_at: now });
  }

  /** Deletes the organization with its users, keys and connections. */
  async deleteOrganization(p: Principal, id: string): Promise<void> {
    requirePartner(p);
    if (!(await this.organizations.delete(id))) throw notFound('organization', id);
    this.onIdentityChange();
  }

  // ---- users (partner, or an admin of the organization) ----

  async listUsers(p: Principal, orgId: string): Promise<User[]> {
    await this.requireUserManager(p, orgId);
    return (await this.users.listByOrganization(orgId)).map(toUser);
  }

  async getUser(p: Principal, orgId: string, userId: string): Promise<User> {
    await this.requireUserManager(p, orgId);
    return toUser(await this.loadUser(orgId, userId));
  }

  async createUser(
    p: Principal | 'system',
    orgId: string,
    input: { email: string; role?: 'admin' | 'user' },
  ): Promise<User> {
    if (p !== 'system') await this.requireUserManager(p, orgId);
    const email = checkEmail(input.email);
    if (await this.users.findByEmail(email)) {
      throw conflict('user_exists', `A user with email ${email} already exists.`);
    }
    const now = this.now();
    const row: UserRow = {
      id: newId(),
      organization_id: orgId,
      email,
      role: input.role ?? 'user',
      created_at: now,
      updated_at: now,
    };
    await this.users.insert(row);
    return toUser(row);
  }

  async updateUser(
    p: Principal,
    orgId: string,
    userId: string,
    input: { email?: string; role?: 'admin' | 'user' },
  ): Promise<User> {
    await this.requireUserManager(p, orgId);
    const user = await this.loadUser(orgId, userId);
    const changes: Partial<Pick<UserRow, 'email' | 'role' | 'updated_at'>> = { updated_at: this.now() };
    if (input.email !== undefined) {
      const email = checkEmail(input.email);
      const other = await this.users.findByEmail(email);
      if (other && other.id !== userId)
        throw conflict('user_exists', `A user with email ${email} already exists.`);
      changes.email = email;
    }
    if (input.role !== undefined) changes.role = input.role;
    await this.users.update(userId, changes);
    this.onIdentityChange();
    return toUser({ ...user, ...changes });
  }

  async deleteUser(p: Principal, orgId: string, userId: string): Promise<void> {
    await this.requireUserManager(p, orgId);
    if (!(await this.users.delete(orgId, userId))) throw notFound('user', userId);
    this.onIdentityChange();
  }

  // ---- keys ----

  async createUserKey(p: Principal | 'system', orgId: string, userId: string): Promise<CreatedKey> {
    if (p !== 'system') await this.requireUserManager(p, orgId);
    await this.loadUser(orgId, userId);
    return this.insertKey('user', orgId, userId);
  }

  async listUserKeys(p: Principal, orgId: string, userId: string): Promise<KeyInfo[]> {
    await this.requireUserManager(p, orgId);
    await this.loadUser(orgId, userId);
    return (await this.keys.listForUser(userId)).map(toKeyInfo);
  }

  async revokeUserKey(p: Principal, orgId: string, userId: string, keyId: string): Promise<void> {
    await this.requireUserManager(p, orgId);
    const key = await this.keys.find(keyId);
    if (!key || key.kind !== 'user' || key.user_id !== userId || key.organization_id !== orgId) {
      throw notFound('key', keyId);
    }
    await this.keys.revoke(keyId, this.now());
    this.onIdentityChange();
  }

  async createOrganizationKey(p: Principal, orgId: string): Promise<CreatedKey> {
    await this.requireUserManager(p, orgId);
    return this.insertKey('organization', orgId, null);
  }

  async listOrganizationKeys(p: Principal, orgId: string): Promise<KeyInfo[]> {
    await this.requireUserManager(p, orgId);
    return (await this.keys.listForOrganization(orgId)).map(toKeyInfo);
  }

  async revokeOrganizationKey(p: Principal, orgId: string, keyId: string): Promise<void> {
    await this.requireUserManager(p, orgId);
    const key = await this.keys.find(keyId);
    if (!key || key.kind !== 'organization' || key.organization_id !== orgId) throw notFound('key', keyId);
    await this.keys.revoke(keyId, this.now());
    this.onIdentityChange();
  }

  /**
   * Registers a partner key whose value is already known (generated at first start or set by the operator).
   * A key that was registered before, even if since revoked, is left as it is: revocation sticks.
   */
  /**
   * Makes `value` the one valid partner key: registers it (or reinstates it, if it was revoked) and
   * revokes every other partner key, so rotating QRUN_PARTNER_KEY ends the old key at the next start.
   * Several processes may do this at once with the same value; they agree.
   */
  async usePartnerKey(value: string): Promise<{ revoked: number }> {
    const hash = hashKey(value);
    const existing = await this.keys.findByHash(hash);
    if (!existing) {
      await this.keys.insertIfAbsent({
        id: newId(),
        kind: 'partner',
        organization_id: null,
        user_id: null,
        key_hash: hash,
        key_hint: keyHint(value),
        created_at: this.now(),
        revoked_at: null,
      });
    } else if (existing.kind !== 'partner') {
      // Impossible by the key's prefix, unless the store was edited by hand.
      throw new Error('The configured partner key is stored as another kind of key.');
    } else if (existing.revoked_at !== null) {
      await this.keys.reinstate(existing.id);
    }
    const revoked = await this.keys.revokeOtherPartnerKeys(hash, this.now());
    if (revoked > 0) this.onIdentityChange();
    return { revoked };
  }

  findOrganizationByName(name: string): Promise<OrganizationRow | undefined> {
    return this.organizations.findByName(name);
  }

  // ---- helpers ----

  private async insertKey(kind: KeyKind, orgId: string | null, userId: string | null): Promise<CreatedKey> {
    const value = generateKey(kind);
    const row: ApiKeyRow = {
      id: newId(),
      kind,
      organization_id: orgId,
      user_id: userId,
      key_hash: hashKey(value),
      key_hint: keyHint(value),
      created_at: this.now(),
      revoked_at: null,
    };
    await this.keys.insert(row);
    return { id: row.id, value };
  }

  /**
   * The partner may manage any organization's users; an admin user only their own organization's.
   * Another organization is reported as not found, not forbidden, so ids cannot be probed.
   */
  private async requireUserManager(p: Principal, orgId: string): Promise<void> {
    if (p.kind === 'partner') {
      await this.loadOrganization(orgId);
      return;
    }
    if (p.organizationId !== orgId) throw notFound('organization', orgId);
    if (p.kind !== 'user' || p.role !== 'admin') {
      throw forbidden(
        'Only an admin user of this organization (or the partner key) may manage its users and keys.',
      );
    }
  }

  private async loadOrganization(id: string): Promise<OrganizationRow> {
    const org = await this.organizations.find(id);
    if (!org) throw notFound('organization', id);
    return org;
  }

  private async loadUser(orgId: string, userId: string): Promise<UserRow> {
    const user = await this.users.find(orgId, userId);
    if (!user) throw notFound('user', userId);
    return user;
  }
}

function requirePartner(p: Principal): void {
  if (p.kind !== 'partner')
    throw forbidden('Only the partner (instance operator) key may manage organizations.');
}

function checkEmail(email: string): string {
  const normalized = email.trim().toLowerCase();
  rejectNul(normalized, 'email');
  if (!EMAIL_RE.test(normalized) || normalized.length > 320) {
    throw badRequest('invalid_email', `"${email}" is not an email address.`, { field: 'email' });
  }
  return normalized;
}

function toOrganization(row: OrganizationRow): Organization {
  return {
    id: row.id,
    name: row.name,
    created_at: toWireTime(row.created_at),
    updated_at: toWireTime(row.updated_at),
  };
}

function toUser(row: UserRow): User {
  return {
    id: row.id,
    organization_id: row.organization_id,
    email: row.email,
    role: row.role,
    created_at: toWireTime(row.created_at),
    updated_at: toWireTime(row.updated_at),
  };
}

function toKeyInfo(row: ApiKeyRow): KeyInfo {
  return {
    id: row.id,
    kind: row.kind,
    hint: row.key_hint,
    created_at: toWireTime(row.created_at),
    revoked_at: row.revoked_at === null ? null : toWireTime(row.revoked_at),
  };
}
