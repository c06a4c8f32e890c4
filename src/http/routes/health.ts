import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Metrics } from '../../core/metrics.js';

/**
 * Liveness, readiness and metrics: no API key, no envelope (for load balancers, orchestrators and
 * Prometheus). Keep these ports off the public internet, as usual for /metrics.
 */
export const healthRoutes =
  (isReady: () => Promise<boolean>, metrics: Metrics): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/metrics',
      { config: { public: true }, schema: { tags: ['operations'] } },
      async (_req, reply) => {
        const body = await metrics.registry.metrics();
        return reply.type(metrics.registry.contentType).send(body);
      },
    );
    const Status = Type.Object({ status: Type.String() });
    app.get(
      '/healthz',
      { config: { public: true }, schema: { tags: ['operations'], response: { 200: Status } } },
      async () => ({ status: 'ok' }),
    );
    app.get(
      '/readyz',
      { config: { public: true }, schema: { tags: ['operations'], response: { 200: Status, 503: Status } } },
      async (_req, reply) => {
        const ready = await isReady().catch(() => false);
        return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable' });
      },
    );
  };
