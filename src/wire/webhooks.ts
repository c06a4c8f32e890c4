import { Type, type Static } from 'typebox';

/** The webhook signing secret, as `POST /api/webhook_secret` shows it: once. */
export const WebhookSecret = Type.Object(
  {
    secret: Type.String({
      description:
        'whsec_ and 43 base64url characters. Shown only now; qrun keeps it sealed. The HMAC key of every ' +
        'callback signature, as it is here (whsec_ included).',
      examples: ['whsec_3q2-7wF9bZkq0mRzYtV1s8aLcN4pXe6hJdUoGiKfB5M'],
    }),
  },
  { additionalProperties: false },
);
export type WebhookSecret = Static<typeof WebhookSecret>;

/** The body qrun POSTs to a query's callback_url when it ends (signed: header Qrun-Signature). */
export const CallbackPayload = Type.Object({
  id: Type.String(),
  status: Type.Union([Type.Literal('done'), Type.Literal('failed')]),
  count: Type.Union([Type.Integer(), Type.Null()], { description: 'Rows in the whole result, when done.' }),
  error: Type.Union([Type.String(), Type.Null()], { description: 'Why it failed, when failed.' }),
});
export type CallbackPayload = Static<typeof CallbackPayload>;
