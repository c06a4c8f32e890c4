import { randomUUID } from 'node:crypto';
import { badRequest } from './errors.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function newId(): string {
  return randomUUID();
}

export function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}

/** Path ids are checked before any lookup, so a typo is 400 `invalid_id`, not a 404. */
export function parseId(value: string, what = 'id'): string {
  if (!isUuid(value)) {
    throw badRequest('invalid_id', `The ${what} "${truncate(value, 64)}" is not a valid UUID.`);
  }
  return value.toLowerCase();
}

export function truncate(value: string, max: number): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}
