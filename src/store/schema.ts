

/**
 * Table shapes for Kysely. Times are RFC 3339 UTC text (see core/time.ts) and JSON is text,
 * so the same migrations and queries run on SQLite and PostgreSQL.
 */
export interface OrganizationsTable {
  id: string;
  name: string;
  created_at: string;
  updated_at: string;
}

export interface UsersTable {
  id: string;
  organization_id: string;
  email: string;
  role: 'admin' | 'user';
  created_at: string;
  updated_at: string;
}

export interface ApiKeysTable {
  id: string;
  kind: 'user' | 'organization' | 'partner';
  organization_id: string | null;
  user_id: string | null;
  /** SHA-256 of the whole key, hex. The key itself is never stored. */
  key_hash: string;
  /** The key's first characters, so an operator can tell keys apart in listings. */
  key_hint: string;
  created_at: string;
  revoked_at: string | null;
}

export interface ConnectionsTable {
  id: string;
  organization_id: string;
  name: string;
  type: string;
  /** JSON object; secret fields hold `enc:v1:...` ciphertext, never plain text. */
  configuration: string;
  status: string;
  status_error: string | null;
  created_at: string;
  updated_at: string;
}


export interface Database {
  organizations: OrganizationsTable;
  users: UsersTable;
  api_keys: ApiKeysTable;
  connections: ConnectionsTable;
}
