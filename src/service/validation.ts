import { badRequest, rejectNul } from '../core/errors.js';

/** Names of organizations and connections: trimmed, not empty, no NUL. */
export function checkName(name: string): string {
  const trimmed = name.trim();
  if (trimmed === '') throw badRequest('invalid_name', 'name must not be empty.', { field: 'name' });
  rejectNul(trimmed, 'name');
  return trimmed;
}
