import { badRequest } from '../core/errors.js';
import type { ConfigField } from './connector.js';

/** The value shown instead of a secret, and which, sent back on PUT, means "keep the stored secret". */
export const SECRET_PLACEHOLDER = '********';

/**
 * Checks a user-supplied configuration object against a connector's fields: rejects unknown fields,
 * missing required ones and wrong types, and fills defaults. Every error names the field.
 */
export function validateConfigFields(
  fields: readonly ConfigField[],
  input: unknown,
): Record<string, string | number | boolean> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw badRequest('invalid_configuration', 'configuration must be a JSON object.');
  }
  const known = new Set(fields.map((f) => f.name));
  for (const name of Object.keys(input)) {
    if (!known.has(name)) {
      throw badRequest(
        'invalid_configuration',
        `configuration.${name} is not a field of this connection type (expected: ${[...known].join(', ')}).`,
        { field: `configuration.${name}` },
      );
    }
  }
  const out: Record<string, string | number | boolean> = {};
  const record = input as Record<string, unknown>;
  for (const field of fields) {
    const value = record[field.name];
    if (value === undefined || value === null || value === '') {
      if (field.default !== undefined) out[field.name] = field.default;
      else if (field.required) {
        throw badRequest('invalid_configuration', `configuration.${field.name} is required.`, {
          field: `configuration.${field.name}`,
        });
      }
      continue;
    }
    out[field.name] = checkType(field, value);
  }
  return out;
}

function checkType(field: ConfigField, value: unknown): string | number | boolean {
  const fail = (expected: string) =>
    badRequest('invalid_configuration', `configuration.${field.name} must be ${expected}.`, {
      field: `configuration.${field.name}`,
    });
  switch (field.type) {
    case 'string':
      if (typeof value !== 'string') throw fail('a string');
      if (value.length > 4096) throw fail('at most 4096 characters');
      return value;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) throw fail('a whole number');
      if (field.name === 'port' && (value < 1 || value > 65535)) throw fail('a port number from 1 to 65535');
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') throw fail('true or false');
      return value;
  }
}

/** A copy of the configuration with every secret field replaced by the placeholder. */
export function maskSecrets(
  fields: readonly ConfigField[],
  config: Record<string, unknown>,
): Record<string, unknown> {
  const out = { ...config };
  for (const f of fields) if (f.secret && out[f.name] !== undefined) out[f.name] = SECRET_PLACEHOLDER;
  return out;
}

/**
 * Removes secrets from a database's error message before anyone sees it: the secret values themselves,
 * and any `scheme://user:password@` credentials.
 */
export function scrubMessage(message: string, secrets: readonly string[]): string {
  let out = message.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]+(:[^\s/@]*)?@/gi, '$1***@');
  for (const s of secrets) if (s.length >= 3) out = out.split(s).join('***');
  return out;
}
