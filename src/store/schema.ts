import type { TaskStatus } from '../core/task-status.js';

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

export interface QueryTasksTable {
  id: string;
  organization_id: string;
  owner: string;
  connection_id: string;
  sql: string;
  /** JSON array of positional parameter values. */
  parameters: string;
  timeout_seconds: number;
  max_rows: number | null;
  status: TaskStatus;
  error: string | null;
  /** JSON array of unique field names, once done. */
  fields: string | null;
  /** JSON array of {name, type}, once done. */
  schema: string | null;
  row_count: number | null;
  page_count: number | null;
  /** 1 when max_rows cut the result short. */
  truncated: number;
  worker_id: string | null;
  lease_expires_at: string | null;
  cancel_requested: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  expires_at: string | null;
}

export interface IdempotencyKeysTable {
  owner: string;
  key: string;
  request_hash: string;
  state: 'pending' | 'done';
  response_status: number | null;
  response_body: string | null;
  created_at: string;
  expires_at: string;
}

/** Result pages that still have to be deleted (a delete failed, or their task row went away first). */
export interface PageDeletionsTable {
  query_id: string;
  requested_at: string;
  attempts: number;
  last_error: string | null;
}

export interface Database {
  organizations: OrganizationsTable;
  users: UsersTable;
  api_keys: ApiKeysTable;
  connections: ConnectionsTable;
  query_tasks: QueryTasksTable;
  idempotency_keys: IdempotencyKeysTable;
  page_deletions: PageDeletionsTable;
}
