import { createHash } from 'node:crypto';
import {
  AppError,
  badRequest,
  conflict,
  errorRecord,
  fromErrorRecord,
  type ErrorRecord,
} from '../core/errors.js';
import { isoAfter, nowIso } from '../core/time.js';
import type { IdempotencyKeysRepository } from '../store/repositories/idempotency-keys.js';

const KEY_RE = /^[A-Za-z0-9_-]{8,255}$/;
const RETENTION_MS = 24 * 3600 * 1000;
/** A submit takes milliseconds; a record still pending after this belongs to a request that never finished. */
const PENDING_ABANDONED_MS = 60_000;

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
 * Runs `work` at most once per (caller, key) within 24 h and replays its outcome afterwards: the same
 * result, or the same AppError. Client errors are part of the fixed outcome; 429, 5xx and 503s are not
 * (the caller should retry them). The outcome is stored as JSON, so `T` must survive a JSON round trip.
 */
export async function withIdempotency<T>(
  repo: IdempotencyKeysRepository,
  owner: string,
  key: string | undefined,
  hash: string,
  work: () => Promise<T>,
  now: () => string = nowIso,
): Promise<T> {
  if (key === undefined) return work();
  const started = now();
  let inserted = await repo.tryInsertPending({
    owner,
    key,
    request_hash: hash,
    created_at: started,
    expires_at: isoAfter(started, RETENTION_MS),
  });
  if (!inserted) {
    const existing = await repo.find(owner, key);
    // Expired, or pending for so long that its request must have died with its process: start afresh.
    const abandoned =
      existing?.state === 'pending' && existing.created_at < isoAfter(started, -PENDING_ABANDONED_MS);
    if (existing && (existing.expires_at < started || abandoned)) {
      await repo.delete(owner, key);
      inserted = await repo.tryInsertPending({
        owner,
        key,
        request_hash: hash,
        created_at: started,
        expires_at: isoAfter(started, RETENTION_MS),
      });
    }
    if (!inserted) return replay<T>(await repo.find(owner, key), hash);
  }

  try {
    const result = await work();
    await repo.complete(owner, key, 200, JSON.stringify(result));
    return result;
  } catch (err) {
    // 429 is "not now", like a 503: the retry the client is told to make must be able to succeed.
    if (err instanceof AppError && err.status < 500 && err.status !== 429) {
      await repo.complete(owner, key, err.status, JSON.stringify(errorRecord(err)));
    } else {
      await repo.delete(owner, key);
    }
    throw err;
  }
}

function replay<T>(existing: Awaited<ReturnType<IdempotencyKeysRepository['find']>>, hash: string): T {
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
  const stored = JSON.parse(existing.response_body ?? 'null') as unknown;
  if (existing.response_status !== null && existing.response_status >= 400) {
    throw fromErrorRecord(stored as ErrorRecord);
  }
  return stored as T;
}
