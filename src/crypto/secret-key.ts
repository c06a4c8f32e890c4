import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SecretBox } from './secret-box.js';

/**
 * The key that seals connection secrets. From QRUN_SECRET_KEY(_FILE) when set; otherwise a key generated
 * once into the data directory (mode 0600), which suits the single-machine embedded default.
 *
 * `sealedWith` holds the key ids of the secrets already in the metadata store. A key that cannot open
 * them stops the start with a sentence naming the key id it needs: generating a fresh key because the
 * file went missing would leave every stored secret unreadable, silently.
 */
export function loadSecretKey(
  configured: string | undefined,
  dataDir: string,
  sealedWith: ReadonlySet<string> = new Set(),
): Buffer {
  const file = path.join(dataDir, 'secret-key');
  const needed = [...sealedWith].sort().join(', ');
  let key: Buffer;
  let source: string;
  if (configured !== undefined) {
    key = Buffer.from(configured, 'base64');
    source = 'QRUN_SECRET_KEY';
  } else if (existsSync(file)) {
    key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte base64 key.`);
    source = file;
  } else if (sealedWith.size > 0) {
    throw new Error(
      `the metadata store holds connection secrets sealed with key id ${needed}, but QRUN_SECRET_KEY is not ` +
        `set and ${file} is missing; restore that file or set QRUN_SECRET_KEY to the key with that id ` +
        '(a new key could never open those secrets).',
    );
  } else {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    key = randomBytes(32);
    writeFileSync(file, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    return key;
  }
  const id = SecretBox.keyIdOf(key);
  const foreign = [...sealedWith].filter((k) => k !== id).sort();
  if (foreign.length > 0) {
    throw new Error(
      `the metadata store holds connection secrets sealed with key id ${foreign.join(', ')}, but the key from ` +
        `${source} has id ${id}; set QRUN_SECRET_KEY (or restore ${file}) to the key with id ${foreign.join(' / ')}.`,
    );
  }
  return key;
}

/** The key ids named by the sealed secrets in stored configurations (JSON objects of field → value). */
export function sealedKeyIds(configurations: readonly string[]): Set<string> {
  const ids = new Set<string>();
  for (const text of configurations) {
    const config = JSON.parse(text) as Record<string, unknown>;
    for (const value of Object.values(config)) {
      const id = typeof value === 'string' ? SecretBox.sealedKeyId(value) : undefined;
      if (id !== undefined) ids.add(id);
    }
  }
  return ids;
}
