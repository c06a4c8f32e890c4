import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generateKey } from '../auth/api-keys.js';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { IdentityService } from './identity-service.js';

export interface BootstrapResult {
  /** Set only on the very first start: the admin key, to be shown once. */
  adminKey?: string;
  adminKeyFile?: string;
  partnerKeyFile?: string;
}

export const DEFAULT_ORGANIZATION = 'default';
export const DEFAULT_ADMIN_EMAIL = 'admin@localhost';

/**
 * First start on an empty store: an organization `default`, its admin user and an admin API key (written
 * to `<data dir>/admin-key`, mode 0600). The partner key comes from QRUN_PARTNER_KEY, or is generated once
 * into `<data dir>/partner-key`. Later starts change nothing and reveal nothing.
 */
export async function bootstrap(deps: {
  config: Pick<Config, 'dataDir' | 'partnerKey'>;
  identity: IdentityService;
  log: Pick<Logger, 'warn'>;
}): Promise<BootstrapResult> {
  const { config, identity, log } = deps;
  const result: BootstrapResult = {};

  // The configured partner key, else the generated file's, is the only valid one: a start with another
  // value revokes the old key (see IdentityService.usePartnerKey).
  const partnerFile = path.join(config.dataDir, 'partner-key');
  let partnerKey = config.partnerKey;
  if (partnerKey === undefined && existsSync(partnerFile))
    partnerKey = readFileSync(partnerFile, 'utf8').trim();
  if (partnerKey === undefined) {
    partnerKey = generateKey('partner');
    writeFileSync(partnerFile, `${partnerKey}\n`, { mode: 0o600, flag: 'wx' });
    result.partnerKeyFile = partnerFile;
  }
  const { revoked } = await identity.usePartnerKey(partnerKey);
  if (revoked > 0) {
    log.warn({ revoked }, 'revoked the previous partner key: only the configured one is valid now');
  }

  const organizations = await identity.listOrganizations({ kind: 'partner', keyId: 'bootstrap' });
  if (organizations.length === 0) {
    // Several api processes may start at once on a new shared store: the organization's unique name
    // lets exactly one of them bootstrap, and the others carry on.
    const org = await identity
      .createOrganization('system', { name: DEFAULT_ORGANIZATION })
      .catch(async (err: unknown) => {
        if (await identity.findOrganizationByName(DEFAULT_ORGANIZATION)) return undefined;
        throw err;
      });
    if (!org) return result;
    const admin = await identity.createUser('system', org.id, { email: DEFAULT_ADMIN_EMAIL, role: 'admin' });
    const key = await identity.createUserKey('system', org.id, admin.id);
    const file = path.join(config.dataDir, 'admin-key');
    writeFileSync(file, `${key.value}\n`, { mode: 0o600 });
    result.adminKey = key.value;
    result.adminKeyFile = file;
  }
  return result;
}

/** The first-start message: the one time the admin key is printed. */
export function firstStartMessage(result: BootstrapResult, baseUrl: string): string | undefined {
  if (!result.adminKey) return undefined;
  return [
    '',
    `qrun: first start. Created organization "${DEFAULT_ORGANIZATION}" and admin user ${DEFAULT_ADMIN_EMAIL}.`,
    `Admin API key (saved to ${result.adminKeyFile}; it is not shown again):`,
    '',
    `  ${result.adminKey}`,
    '',
    'Try it:',
    `  curl -H "Authorization: Bearer $(cat ${result.adminKeyFile})" ${baseUrl}/api/me`,
    result.partnerKeyFile ? `The partner (operator) key is in ${result.partnerKeyFile}.` : '',
    '',
  ].join('\n');
}
