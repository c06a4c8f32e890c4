import type { ConfigField } from './connector.js';

/**
 * Secrets in configurations: the placeholder that stands for a stored one, masking for responses and
 * scrubbing from database messages. Which fields are secret comes from each connector's schema
 * (config-schema.ts, `x-secret`), listed in Connector.configFields.
 */

/** The value shown instead of a secret, and which, sent back on PUT, means "keep the stored secret". */
export const SECRET_PLACEHOLDER = '********';

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
