/** Who is calling. Resolved once per request from the Authorization header. */
export type Principal =
  | {
      kind: 'user';
      keyId: string;
      userId: string;
      email: string;
      role: 'admin' | 'user';
      organizationId: string;
      organizationName: string;
    }
  | { kind: 'organization'; keyId: string; organizationId: string; organizationName: string }
  | { kind: 'partner'; keyId: string };

/** The id a query is owned by: the user, or the organization key's organization. */
export function ownerOf(principal: Principal): string {
  switch (principal.kind) {
    case 'user':
      return `user:${principal.userId}`;
    case 'organization':
      return `organization:${principal.organizationId}`;
    case 'partner':
      return `partner:${principal.keyId}`;
  }
}
