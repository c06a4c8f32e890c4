import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Authenticator } from '../auth/authenticator.js';
import type { Config } from '../config/config.js';
import { badRequest } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import { qrunVersion } from '../core/version.js';
import { registerAuthentication } from './plugins/authentication.js';
import { consoleRoutes } from './plugins/console.js';
import {
  clientErrorHandler,
  frameworkErrors,
  registerErrorHandler,
  registerProtocolChecks,
} from './plugins/error-handler.js';
import { registerNotFound } from './plugins/not-found.js';
import { registerSilentConnectionReaper } from './plugins/silent-connections.js';
import { registerOpenApi } from './plugins/openapi.js';
import { registerRateLimit } from './plugins/rate-limit.js';
import { registerRequestMetrics } from './plugins/request-metrics.js';
import { connectionRoutes } from './routes/connections.js';
import { markDocsPublic, registerDocs } from './routes/docs.js';
import { healthRoutes } from './routes/health.js';
import { meRoutes } from './routes/me.js';
import { organizationRoutes } from './routes/organizations.js';
import { queryRoutes } from './routes/queries.js';
import { queryEventRoutes } from './routes/query-events.js';
import { queryExportRoutes } from './routes/query-export.js';
import { webhookSecretRoutes } from './routes/webhook-secret.js';
import type { ConnectionService } from '../service/connection-service.js';
import type { IdentityService } from '../service/identity-service.js';
import type { QueryService } from '../service/query-service.js';
import type { WebhookService } from '../service/webhook-service.js';
import { ErrorBody } from '../wire/common.js';

/** What the worker's HTTP face needs: health, readiness and metrics. */
export interface OpsDeps {
  log: Logger;
  metrics: Metrics;
  isReady(): Promise<boolean>;
}

/**
 * What the API needs, and nothing more: the services behind its routes, the authenticator, and a few
 * settings. It never sees the stores, the runner or the sweeper.
 */
export interface HttpDeps extends OpsDeps {
  config: Pick<Config, 'bodyLimitBytes' | 'rateLimitPerMinute' | 'redisPrefix' | 'sseHeartbeatSeconds'>;
  authenticator: Pick<Authenticator, 'authenticate'>;
  identity: IdentityService;
  connections: ConnectionService;
  queries: QueryService;
  webhooks: WebhookService;
  /** Shared rate-limit counters when scaled out; undefined: counted in this process. */
  rateLimitRedis: Redis | undefined;
}

/** Builds the HTTP face of qrun over already-assembled services. Nothing here runs user SQL. */
export async function buildHttpApp(deps: HttpDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    // Widened to Fastify's logger type so route plugins type-check against the default instance.
    loggerInstance: deps.log as FastifyBaseLogger,
    bodyLimit: config.bodyLimitBytes,
    // Rejecting unknown fields needs Ajv to report them instead of silently dropping them, and
    // "5" must not pass as an integer in a JSON body.
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false },
    },
    // A client's X-Request-Id is used only when it is a short token: it lands in every log line.
    requestIdHeader: false,
    genReqId: requestId,
    clientErrorHandler,
    frameworkErrors,
    // Node would answer a missing Host itself with an empty 400; registerProtocolChecks does it in the envelope.
    http: { requireHostHeader: false },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });

  app.addSchema(ErrorBody);
  // Some clients send `Content-Type: application/json` with an empty body (e.g. a submit whose SQL is in
  // ?query=). Treat that as no body instead of a parse error; everything else goes to Fastify's own
  // parser, which also guards against prototype poisoning.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    return parseJson(request, text, (err, parsed) => {
      // Valid JSON that the guard refused has a prototype-poisoning key: say that, not "not valid JSON".
      if (err && isPlainJson(text)) {
        return done(
          badRequest(
            'invalid_json',
            'The request body uses a forbidden key ("__proto__" or "constructor.prototype").',
          ),
          undefined,
        );
      }
      return done(err, parsed);
    });
  });
  registerErrorHandler(app);
  registerProtocolChecks(app);
  registerNotFound(app);
  registerSilentConnectionReaper(app);
  registerRequestMetrics(app, deps.metrics);
  registerAuthentication(app, deps.authenticator);
  markDocsPublic(app);
  // After authentication (its check needs the key) and before any route (it hooks each one as it is added).
  await registerRateLimit(app, {
    perMinute: config.rateLimitPerMinute,
    redis: deps.rateLimitRedis,
    prefix: config.redisPrefix,
    log: app.log,
  });
  await registerOpenApi(app, qrunVersion());

  await app.register(healthRoutes(() => deps.isReady(), deps.metrics));
  await registerDocs(app);
  await app.register(meRoutes(deps.identity));
  await app.register(organizationRoutes(deps.identity));
  await app.register(connectionRoutes(deps.connections));
  await app.register(queryRoutes(deps.queries));
  await app.register(queryEventRoutes(deps.queries, { heartbeatSeconds: config.sseHeartbeatSeconds }));
  await app.register(queryExportRoutes(deps.queries));
  await app.register(webhookSecretRoutes(deps.webhooks));
  await app.register(consoleRoutes());
  return app;
}

/** The worker's HTTP face: health, readiness and metrics only. */
export async function buildOpsApp(deps: OpsDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    forceCloseConnections: 'idle',
    frameworkErrors,
    http: { requireHostHeader: false },
  });
  // The health routes document their error responses with the shared Error schema.
  app.addSchema(ErrorBody);
  registerErrorHandler(app);
  registerProtocolChecks(app);
  registerNotFound(app);
  registerSilentConnectionReaper(app);
  registerRequestMetrics(app, deps.metrics);
  await app.register(healthRoutes(() => deps.isReady(), deps.metrics));
  return app;
}

const REQUEST_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** Our own ids: this process's random prefix and a counter (cheaper per request than a UUID). */
const PROCESS_PREFIX = randomBytes(6).toString('hex');
let requests = 0;

/** The caller's X-Request-Id when it is a short token ([A-Za-z0-9._-], at most 64), else one of ours. */
export function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  if (typeof given === 'string' && REQUEST_ID_RE.test(given)) return given;
  return `${PROCESS_PREFIX}-${(++requests).toString(36)}`;
}

function isPlainJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
