import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM for connection secrets at rest. The stored form names the key it was sealed with
 * (`enc:v1:<key id>:<iv>:<tag>:<ciphertext>`), so a wrong or rotated key fails loudly instead of
 * producing garbage.
 */
export class SecretBox {
  readonly keyId: string;

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('The secrets key must be 32 bytes.');
    this.keyId = SecretBox.keyIdOf(key);
  }

  /** The short id a sealed value names its key by: not secret, and enough to tell keys apart. */
  static keyIdOf(key: Buffer): string {
    return createHash('sha256').update(key).digest('hex').slice(0, 8);
  }

  /** The key id a sealed value names, or undefined for anything else. */
  static sealedKeyId(value: string): string | undefined {
    return /^enc:v1:([0-9a-f]{8}):/.exec(value)?.[1];
  }

  static isSealed(value: unknown): value is string {
    return typeof value === 'string' && value.startsWith('enc:v1:');
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [
      'enc',
      'v1',
      this.keyId,
      iv.toString('base64'),
      tag.toString('base64'),
      body.toString('base64'),
    ].join(':');
  }

  open(sealed: string): string {
    const parts = sealed.split(':');
    if (parts.length !== 6 || parts[0] !== 'enc' || parts[1] !== 'v1')
      throw new Error('Not a sealed secret.');
    const [, , keyId, iv, tag, body] = parts as [string, string, string, string, string, string];
    if (keyId !== this.keyId) {
      throw new Error(`This secret was sealed with key ${keyId}, but the configured key is ${this.keyId}.`);
    }
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64')), decipher.final()]).toString('utf8');
  }
}
