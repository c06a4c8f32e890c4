import type { Me } from './types';

/**
 * What a key may do, from docs/SECURITY.md's role table. The console hides what a role may not use; the
 * server decides regardless (a 403 is explained where it happens).
 */
export function canManageConnections(me: Me): boolean {
  return me.is_organization || (me.is_user && me.role === 'admin');
}

/** Connections and queries belong to organizations: the partner key has neither. */
export function canUseConnections(me: Me): boolean {
  return !me.is_partner && me.organization_id !== null;
}

export function roleLabel(me: Me): string {
  if (me.is_partner) return 'partner key';
  if (me.is_organization) return 'organization key';
  return me.role ?? 'user';
}

export function whoLabel(me: Me): string {
  if (me.is_partner) return 'Instance operator';
  const org = me.organization_name ?? me.organization_id ?? '';
  if (me.is_organization) return `Organization ${org}`;
  return me.email ? `${me.email} · ${org}` : org;
}
