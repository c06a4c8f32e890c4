import { createHash } from 'node:crypto';
import { AppError, badRequest, conflict } from '../core/errors.js';
import { isoAfter, nowIso } from '../core/time.js';
import type { IdempotencyKeysRepository } from '../store/repositories/idempotency-keys.js';

const KEY_RE = /^[A-Za-z0-9_-]{8,255}$/;
const RETENTION_MS = 24 * 3600 * 1000;
/** A submit takes milliseconds; a record still pending after this belongs to a request that never finished. */
const PENDING_ABANDONED_MS = 60_000;

export interface StoredResponse {
  status: number;
  body: unknown;
}

/** Checks the Idempotency-Key header's form; undefined when absent. */
export function parseIdempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || !KEY_RE.test(value)) {
    throw badRequest(
      'invalid_idempotency_key',
      'The Idempotency-Key header must be 8 to 255 characters of A-Z, a-z, 0-9, "_" and "-".',
    );
  }
  return value;
}

export function requestHash(request: unknown): string {
  return createHash('sha256').update(JSON.stringify(request)).digest('hex');
}

/**
 * Runs `work` at most once per (caller, key) within 24 h and replays its response afterwards.
 * Client errors are part of the fixed response; 429, 5xx and 503s are not (the caller should retry them).
 */
export async function withIdempotency(
  repo: IdempotencyKeysRepository,
  owner: string,
  key: string | undefined,
  hash: string,
  work: () => Promise<StoredResponse>,
): Promise<StoredResponse> {
  if (key === undefined) return work();
  const now = nowIso();
  let inserted = await repo.tryInsertPending({
    owner,
    key,
    request_hash: hash,
    created_at: now,
    expires_at: isoAfter(now, RETENTION_MS),
  });
  if (!inserted) {
    const existing = await repo.find(owner, key);
    // Expired, or pending for so long that its request must have died with its process: start afresh.
    const abandoned =
      existing?.state === 'pending' && existing.created_at < isoAfter(now, -PENDING_ABANDONED_MS);
    if (existing && (existing.expires_at < now || abandoned)) {
      await repo.delete(owner, key);
      inserted = await repo.tryInsertPending({
        owner,
        key,
        request_hash: hash,
        created_at: now,
        expires_at: isoAfter(now, RETENTION_MS),
      });
    }
    if (!inserted) return replay(await repo.find(owner, key), hash);
  }

  try {
    const response = await work();
    await repo.complete(owner, key, response.status, JSON.stringify(response.body));
    return response;
  } catch (err) {
    // 429 is "not now", like a 503: the retry the client is told to make must be able to succeed.
    if (err instanceof AppError && err.status < 500 && err.status !== 429) {
      const body = {
        status: err.status,
        message: err.message,
        key: err.key,
        ...(err.metadata ? { metadata: err.metadata } : {}),
      };
      await repo.complete(owner, key, err.status, JSON.stringify(body));
    } else {
      await repo.delete(owner, key);
    }
    throw err;
  }
}

function replay(
  existing: Awaited<ReturnType<IdempotencyKeysRepository['find']>>,
  hash: string,
): StoredResponse {
  if (!existing) {
    throw conflict(
      'idempotency_conflict',
      'A request with this Idempotency-Key is being handled; retry in a moment.',
    );
  }
  if (existing.state === 'pending') {
    throw conflict(
      'idempotency_conflict',
      'A request with this Idempotency-Key is still being handled; retry in a moment.',
    );
  }
  if (existing.request_hash !== hash) {
    throw new AppError(
      422,
      'idempotency_mismatch',
      'This Idempotency-Key was already used with a different query or connection; use a new key.',
    );
  }
  const body = JSON.parse(existing.response_body ?? 'null') as unknown;
  if (existing.response_status !== null && existing.response_status >= 400) {
    const b = body as { message: string; key: string; metadata?: Record<string, unknown> };
    throw new AppError(existing.response_status, b.key, b.message, { metadata: b.metadata });
  }
  return { status: existing.response_status ?? 200, body };
}
