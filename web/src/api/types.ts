/** The parts of qrun's wire contract the console reads (see CONTRACT.md and GET /api/openapi.json). */

export interface Me {
  id?: string;
  email?: string;
  organization_id: string | null;
  organization_name: string | null;
  role?: 'admin' | 'user';
  is_user: boolean;
  is_organization: boolean;
  is_partner: boolean;
}

export interface ConfigField {
  name: string;
  type: string; // 'string' | 'integer' | 'boolean' | …
  required: boolean;
  secret: boolean;
  default?: string | number | boolean;
  description: string;
}

export interface ConnectionType {
  id: string;
  name: string;
  fields: ConfigField[];
}

export type ConfigValue = string | number | boolean | null;

export interface Connection {
  id: string;
  name: string;
  type: { id: string; name: string };
  configuration: Record<string, unknown>;
  organization_id: string;
  status: string;
  status_error?: string;
  created_at: string;
  updated_at: string;
}

/** A stored secret comes back as this; sending it back keeps the stored one. */
export const SECRET_PLACEHOLDER = '********';

/** Polytomic's four statuses, the only ones qrun sends. */
export type QueryStatus = 'created' | 'running' | 'done' | 'failed';

export interface ColumnSchema {
  name: string;
  type: string;
}

export interface Progress {
  rows?: number;
  pages?: number;
  bytes?: number;
  elapsed_ms?: number;
}

export interface ErrorDetails {
  code?: string | null;
  sqlstate?: string | null;
  retryable?: boolean | null;
  /** 1-based character offset into the submitted SQL, where the database reports one. */
  position?: number | string | null;
}

export type Row = Record<string, unknown>;

/** GET /api/queries/{id}: status, and one page of rows once done. */
export interface QueryResponse {
  data: {
    id: string;
    status: QueryStatus;
    fields?: string[];
    schema?: ColumnSchema[];
    count?: number;
    truncated?: boolean;
    expires?: string;
    results?: Row[];
    error?: string | null;
    error_details?: ErrorDetails | null;
    progress?: Progress | null;
    /** While created: how many of the organization's queries wait before this one (0: next). */
    queue_position?: number | null;
  };
  links?: { next?: string | null; previous?: string | null; export?: string | null };
}

export interface QuerySummary {
  id: string;
  status: QueryStatus;
  connection_id: string;
  /** The SQL, cut at 1000 characters with "…". */
  query: string;
  count: number | null;
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  expires: string | null;
}

export function isTerminal(status: QueryStatus): boolean {
  return status === 'done' || status === 'failed';
}
