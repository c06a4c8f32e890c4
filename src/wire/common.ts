import { Type, type Static, type TSchema } from 'typebox';

/** `{"data": ...}`: every success body. */
export const Envelope = <T extends TSchema>(
  data: T,
  options: { description?: string; examples?: unknown[] } = {},
) => Type.Object({ data }, { additionalProperties: false, description: 'Success', ...options });

export const ErrorBody = Type.Object(
  {
    status: Type.Integer(),
    message: Type.String(),
    key: Type.String(),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  {
    $id: 'Error',
    description: 'Every error: HTTP status, a sentence for people, a key for programs.',
    examples: [{ status: 400, message: 'The query id "43d8" is not a valid UUID.', key: 'invalid_id' }],
  },
);

export type ErrorBody = Static<typeof ErrorBody>;

/** The one builder of the contract's error envelope: `{status, message, key, metadata?}`. */
export function errorBody(
  status: number,
  key: string,
  message: string,
  metadata?: Record<string, unknown>,
): ErrorBody {
  return metadata === undefined ? { status, message, key } : { status, message, key, metadata };
}

/** Path ids are plain strings in the schema; handlers check them with parseId so a typo is 400 `invalid_id`. */
export const IdParams = Type.Object({ id: Type.String() });

export const Timestamp = Type.String({ format: 'date-time', examples: ['2026-11-28T10:00:00Z'] });
