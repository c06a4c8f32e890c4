import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../core/metrics.js';

/**
 * `qrun_http_request_duration_seconds` for every request, labelled by route pattern (not the URL, so the
 * label set stays small) and status. Registered on the root instance: a hook added inside a route plugin
 * only sees that plugin's routes (it used to sit in the health plugin and saw /metrics, /healthz and
 * /readyz only).
 */
export function registerRequestMetrics(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', (request, reply, done) => {
    metrics.httpDuration.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
    done();
  });
}
