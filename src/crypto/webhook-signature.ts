import { createHmac, randomBytes } from 'node:crypto';

/**
 * Callback signatures, as Stripe signs its webhooks: the header
 * `Qrun-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, with one `v1=` per secret
 * that signs (the current one first, then the previous one while it is still valid). The HMAC key is the
 * secret exactly as it was shown, `whsec_` included. README.md, "Verifying a callback", shows a receiver.
 */
export const SIGNATURE_HEADER = 'qrun-signature';

/** After a rotation the previous secret keeps signing beside the new one for this long: 24 hours. */
export const PREVIOUS_SECRET_TTL_MS = 24 * 3600 * 1000;

/** A new signing secret: `whsec_` and 32 random bytes, base64url. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/** The `Qrun-Signature` value for `body` sent at `unixSeconds`, signed with each of `secrets` in turn. */
export function signatureHeader(secrets: readonly string[], body: string, unixSeconds: number): string {
  const signed = `${unixSeconds}.${body}`;
  return [
    `t=${unixSeconds}`,
    ...secrets.map((secret) => `v1=${createHmac('sha256', secret).update(signed).digest('hex')}`),
  ].join(',');
}
