import type { Principal } from '../auth/principal.js';
import { AppError, badRequest, forbidden, isAppError, rejectNul } from '../core/errors.js';
import { isoAfter, systemClock, type Clock } from '../core/time.js';
import type { SecretBox } from '../crypto/secret-box.js';
import { PREVIOUS_SECRET_TTL_MS, newWebhookSecret } from '../crypto/webhook-signature.js';
import { checkUrl } from '../net/checked-http.js';
import { HostLookupError, type EgressPolicy } from '../net/egress-policy.js';
import type { WebhookSecretsRepository } from '../store/repositories/webhook-secrets.js';
import type { WebhookSecret } from '../wire/webhooks.js';

const FIELD = 'body.callback_url';
/** The schema's limit too (src/wire/queries.ts); repeated here for callers other than the HTTP API. */
export const CALLBACK_URL_MAX_CHARS = 2048;

/**
 * The organization's webhook signing secret, and the submit-time checks of a `callback_url`. Deliveries
 * themselves are the worker layer's (src/worker/webhook-deliverer.ts).
 */
export class WebhookService {
  private readonly now: Clock;

  constructor(
    private readonly deps: { secrets: WebhookSecretsRepository; secretBox: SecretBox; egress: EgressPolicy },
    options: { clock?: Clock } = {},
  ) {
    this.now = options.clock ?? systemClock;
  }

  /**
   * Creates the organization's signing secret, or rotates it, and returns it: the only time it is shown.
   * It is stored sealed (like connection passwords); after a rotation the previous secret keeps signing
   * beside the new one for 24 hours, so receivers can switch without losing a callback.
   */
  async rotateSecret(p: Principal): Promise<WebhookSecret> {
    const organizationId = requireManager(p);
    const secret = newWebhookSecret();
    const now = this.now();
    await this.deps.secrets.rotate(
      organizationId,
      this.deps.secretBox.seal(secret),
      now,
      isoAfter(now, PREVIOUS_SECRET_TTL_MS),
    );
    return { secret };
  }

  /**
   * A submit's callback_url, before anything is created: an http(s) URL without credentials, an
   * organization that has a signing secret (400 `webhook_secret_required` otherwise: qrun never sends an
   * unsigned callback, and creating a secret nobody has seen would make every callback unverifiable), and
   * a destination the egress policy allows (resolved once, every address checked: 400 `host_not_allowed`).
   * A name that does not resolve now is accepted: every attempt resolves and checks it again.
   * Returns the URL as it will be called.
   */
  async checkCallbackUrl(organizationId: string, text: string): Promise<string> {
    const url = parseCallbackUrl(text);
    if (!(await this.deps.secrets.exists(organizationId))) {
      throw badRequest(
        'webhook_secret_required',
        'callback_url needs a webhook signing secret for your organization; an admin creates one with ' +
          'POST /api/webhook_secret (it signs every callback, so your receiver can verify them).',
        { field: FIELD },
      );
    }
    try {
      await checkUrl(this.deps.egress, url);
    } catch (err) {
      if (err instanceof HostLookupError) return url.href;
      if (isAppError(err) && (err.key === 'host_not_allowed' || err.key === 'invalid_configuration')) {
        throw new AppError(400, err.key, `callback_url: ${err.message}`, { metadata: { field: FIELD } });
      }
      throw err;
    }
    return url.href;
  }
}

/** The form of a callback_url: absolute http or https, a host, no user name or password, at most 2048 characters. */
export function parseCallbackUrl(text: string): URL {
  const refuse = (why: string) => badRequest('invalid_callback_url', `callback_url ${why}`, { field: FIELD });
  rejectNul(text, FIELD);
  if (text.length > CALLBACK_URL_MAX_CHARS)
    throw refuse(`may be at most ${CALLBACK_URL_MAX_CHARS} characters.`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw refuse('must be an absolute http:// or https:// URL.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw refuse('must be an absolute http:// or https:// URL.');
  }
  if (url.username !== '' || url.password !== '') {
    throw refuse('must not carry a user name or password; the signature authenticates the callback.');
  }
  // The URL parser has already refused spaces, "@" and control characters in the host.
  if (url.hostname === '') throw refuse('must name a host.');
  return url;
}

/** The signing secret is the organization's: its admins and its organization key manage it. */
function requireManager(p: Principal): string {
  if (p.kind === 'partner') {
    throw forbidden('The partner key manages organizations; the webhook secret belongs to an organization.');
  }
  if (p.kind === 'user' && p.role !== 'admin') {
    throw forbidden(
      'Only an organization admin or the organization key may create or rotate the webhook secret; your role is "user".',
    );
  }
  return p.organizationId;
}
