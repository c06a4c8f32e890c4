import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, badRequest } from '../../core/errors.js';
import { errorBody, type ErrorBody } from '../../wire/common.js';

/** Fastify's own errors, as the contract names them. */
const FASTIFY_CODES: Record<string, { status: number; key: string; message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: {
    status: 413,
    key: 'payload_too_large',
    message: 'The request body is larger than this server accepts.',
  },
  FST_ERR_CTP_INVALID_JSON_BODY: {
    status: 400,
    key: 'invalid_json',
    message: 'The request body is not valid JSON.',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    status: 400,
    key: 'invalid_json',
    message:
      'The request says it carries JSON but its body is empty; send {} or drop the Content-Type header.',
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    key: 'unsupported_media_type',
    message: 'Send request bodies as application/json.',
  },
  // Router errors, which reach frameworkErrors below rather than the error handler.
  FST_ERR_BAD_URL: {
    status: 400,
    key: 'invalid_url',
    message: 'The URL is not valid: a percent sign must be followed by two hex digits of UTF-8.',
  },
  FST_ERR_MAX_PARAM_LENGTH: {
    status: 400,
    key: 'invalid_id',
    message: 'A path parameter is longer than any id; ids are UUIDs.',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    status: 400,
    key: 'invalid_request',
    message: 'The Content-Length header does not match the body.',
  },
};

/**
 * The one place errors become HTTP: AppErrors map to their status and key, Fastify's own errors to
 * the contract's keys, schema failures to a sentence naming the field, and everything else to a bare
 * 500 whose details go only to the log.
 */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const body = toErrorBody(error);
    if (body.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ key: body.key, status: body.status }, body.message);
    if (error instanceof AppError && error.headers) void reply.headers(error.headers);
    return reply.code(body.status).type('application/json; charset=utf-8').send(body);
  });
}

/**
 * Errors Fastify's router raises before any route or hook (a malformed percent-encoding, an overlong path
 * parameter): without this option Fastify writes its own `{error, code, statusCode}` body.
 */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const body = toErrorBody(error);
  if (body.status >= 500) request.log.error({ err: error }, 'request failed');
  void reply.code(body.status).type('application/json; charset=utf-8').send(body);
}

export function toErrorBody(error: FastifyError | Error): ErrorBody {
  if (error instanceof AppError) return errorBody(error.status, error.key, error.message, error.metadata);
  const fe = error as FastifyError;
  if (fe.validation) return validationBody(fe);
  const known = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (known) return errorBody(known.status, known.key, known.message);
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return errorBody(fe.statusCode, 'invalid_request', fe.message);
  }
  return errorBody(
    500,
    'internal_error',
    'Something went wrong on our side; the details are in the server log.',
  );
}

/** Turns Ajv's first error into a sentence that names the field, e.g. `body.timeout_seconds must be an integer.` */
function validationBody(error: FastifyError): ErrorBody {
  const first = error.validation![0]!;
  const context = error.validationContext ?? 'request';
  const path = first.instancePath
    .split('/')
    .filter((s) => s !== '')
    .map((s) => (/^\d+$/.test(s) ? `[${s}]` : `.${s}`))
    .join('');
  const where = `${context}${path}`;
  const params = first.params as Record<string, unknown>;
  let message: string;
  switch (first.keyword) {
    case 'additionalProperties':
      message = `${where} has an unknown field "${String(params.additionalProperty)}".`;
      return errorBody(400, 'unknown_field', message, {
        field: `${where}.${String(params.additionalProperty)}`,
      });
    case 'required':
      message = `${where}.${String(params.missingProperty)} is required.`;
      return errorBody(400, 'invalid_request', message, {
        field: `${where}.${String(params.missingProperty)}`,
      });
    case 'type':
      message = `${where} must be ${article(String(params.type))}.`;
      break;
    default:
      message = `${where} ${first.message ?? 'is not valid'}.`;
  }
  return errorBody(400, 'invalid_request', message, { field: where });
}

function article(type: string): string {
  const names: Record<string, string> = {
    integer: 'a whole number',
    number: 'a number',
    string: 'a string',
    boolean: 'true or false',
    object: 'a JSON object',
    array: 'an array',
    null: 'null',
  };
  return type
    .split(',')
    .map((t) => names[t] ?? t)
    .join(' or ');
}

/**
 * Two answers Node's HTTP server would otherwise write itself, with an empty body: 400 for an HTTP/1.1
 * request without Host (the app turns Node's check off with `http: { requireHostHeader: false }` and
 * makes it here, in the envelope) and 417 for an Expect other than 100-continue. The same per-request
 * hook echoes the request id (one hook instead of two: it runs on every request).
 */
export function registerProtocolChecks(app: FastifyInstance): void {
  // A callback hook, not an async one: it runs on every request.
  app.addHook('onRequest', (request, reply, done) => {
    // Echoed, so a client can quote it when it reports a problem.
    void reply.header('x-request-id', request.id);
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      return done(badRequest('invalid_request', 'An HTTP/1.1 request needs a Host header.'));
    }
    done();
  });
  app.server.on('checkExpectation', (_req, res) => {
    const body = JSON.stringify(
      errorBody(417, 'expectation_failed', 'The only Expect this server knows is 100-continue.'),
    );
    res.writeHead(417, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
    });
    res.end(body);
  });
}

/**
 * Errors Node's HTTP parser raises before Fastify sees a request (oversized headers, garbage on the wire)
 * still get the contract's envelope.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [reason, body] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [
          'Request Header Fields Too Large',
          errorBody(431, 'headers_too_large', 'The request headers are larger than this server accepts.'),
        ]
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? ['Request Timeout', errorBody(408, 'request_timeout', 'The request was not received in time.')]
        : ['Bad Request', errorBody(400, 'invalid_request', 'The request is not valid HTTP.')];
  const status = body.status;
  const text = JSON.stringify(body);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Length: ${Buffer.byteLength(text)}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${text}`,
    );
  }
  socket.destroy(err);
}
