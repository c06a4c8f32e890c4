import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { WebhookService } from '../../service/webhook-service.js';
import { principal } from '../plugins/authentication.js';
import { errors, TAGS } from '../route-docs.js';
import { Envelope } from '../../wire/common.js';
import { WebhookSecret } from '../../wire/webhooks.js';

const DESCRIPTION = [
  "Creates the organization's webhook signing secret, or rotates it, and shows it: this once only (qrun",
  'keeps it sealed). Every callback (`callback_url` on submit) carries the header',
  '`Qrun-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. After a rotation the',
  'previous secret signs beside the new one for 24 hours (a second `v1=`), so receivers can switch without',
  'missing a callback. Organization admins and the organization key only (403 for role `user` and the partner).',
].join('\n');

/** `POST /api/webhook_secret`: the organization's callback signing secret. */
export const webhookSecretRoutes =
  (webhooks: WebhookService): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/api/webhook_secret',
      {
        schema: {
          tags: [TAGS.webhooks],
          operationId: 'rotateWebhookSecret',
          summary: 'Create or rotate the webhook signing secret',
          description: DESCRIPTION,
          response: {
            200: Envelope(WebhookSecret, {
              description: 'The new secret, shown this once.',
              examples: [{ data: { secret: 'whsec_3q2-7wF9bZkq0mRzYtV1s8aLcN4pXe6hJdUoGiKfB5M' } }],
            }),
            ...errors(401, 403, 429),
          },
        },
      },
      async (req) => ({ data: await webhooks.rotateSecret(principal(req)) }),
    );
  };
