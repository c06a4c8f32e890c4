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
  /** Migration 0004. JSON `{id, name, type}`: who created it (null: before qrun recorded it). */
  created_by?: string | null;
  /** JSON `{id, name, type}`: who last changed its name, configuration or health check interval. */
  updated_by?: string | null;
  /** The periodic health check's interval; null: none. */
  healthcheck_interval_seconds?: number | null;
  /** When the next periodic check is due (null without an interval). */
  healthcheck_due_at?: string | null;
  /** While a check runs, the end of its claim: no other process starts one before then. */
  healthcheck_running_until?: string | null;
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
  /** JSON of the failure's ErrorDetails (src/core/task-status.ts), once failed (migration 0005). */
  error_details: string | null;
  /** Rows per result page asked for on submit (`page_rows`); null: QRUN_PAGE_ROWS (migration 0005). */
  page_rows: number | null;
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
  /**
   * When a done task's pages are due for deletion (its expires_at), until the sweeper has deleted them;
   * null otherwise. Indexed, so the sweeper finds due results without walking past expired ones.
   */
  pages_until: string | null;
  /** Where qrun POSTs the signed outcome when the query ends (migration 0006); absent or null: nowhere. */
  callback_url?: string | null;
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

/** An organization's webhook signing secret (migration 0006): sealed like connection passwords. */
export interface WebhookSecretsTable {
  organization_id: string;
  /** `enc:v1:…` (SecretBox) of `whsec_…`. */
  secret: string;
  /** The secret before the last rotation: it keeps signing beside the new one until previous_expires_at. */
  previous_secret: string | null;
  previous_expires_at: string | null;
  created_at: string;
  rotated_at: string;
}

export type WebhookDeliveryStatus = 'pending' | 'delivered' | 'failed';

/** The durable queue of callback deliveries: one row per query that ended with a callback_url. */
export interface WebhookDeliveriesTable {
  task_id: string;
  organization_id: string;
  url: string;
  /** The JSON body, fixed when the query ended: {id, status, count, error}. */
  payload: string;
  status: WebhookDeliveryStatus;
  attempts: number;
  /** When the next attempt is due; while an attempt runs, the end of its claim. */
  next_attempt_at: string;
  /** No attempt is started after this (an hour after the first). */
  give_up_at: string;
  last_error: string | null;
  created_at: string;
  /** When it was delivered or given up. */
  finished_at: string | null;
}

export interface Database {
  organizations: OrganizationsTable;
  users: UsersTable;
  api_keys: ApiKeysTable;
  connections: ConnectionsTable;
  query_tasks: QueryTasksTable;
  idempotency_keys: IdempotencyKeysTable;
  page_deletions: PageDeletionsTable;
  webhook_secrets: WebhookSecretsTable;
  webhook_deliveries: WebhookDeliveriesTable;
}
