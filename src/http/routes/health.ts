import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Metrics } from '../../core/metrics.js';
import { errors, TAGS } from '../route-docs.js';

/**
 * Liveness, readiness and metrics: no API key, no envelope (for load balancers, orchestrators and
 * Prometheus). Keep these ports off the public internet, as usual for /metrics.
 */
export const healthRoutes =
  (isReady: () => Promise<boolean>, metrics: Metrics): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/metrics',
      {
        config: { public: true },
        schema: {
          tags: [TAGS.operations],
          operationId: 'getMetrics',
          summary: 'Prometheus metrics',
          description: 'Metrics in the Prometheus text format (docs/OPERATIONS.md lists them). No API key.',
          response: {
            200: {
              description: 'The metrics.',
              content: {
                'text/plain': {
                  schema: Type.String({
                    examples: [
                      '# HELP qrun_queries_finished_total Queries that reached a terminal status in this process, by status.\n# TYPE qrun_queries_finished_total counter\nqrun_queries_finished_total{status="done"} 42\n',
                    ],
                  }),
                },
              },
            },
            ...errors({ 400: 'The request is malformed (for example, a body that is not valid JSON).' }),
          },
        },
      },
      async (_req, reply) => {
        const body = await metrics.registry.metrics();
        return reply.type(metrics.registry.contentType).send(body);
      },
    );
    const Status = (description: string, status: string) =>
      Type.Object({ status: Type.String() }, { description, examples: [{ status }] });
    app.get(
      '/healthz',
      {
        config: { public: true },
        schema: {
          tags: [TAGS.operations],
          operationId: 'getHealth',
          summary: 'Liveness',
          description: 'Answers while the process runs; for a liveness probe. No API key.',
          response: {
            200: Status('The process is alive.', 'ok'),
            ...errors({ 400: 'The request is malformed (for example, a body that is not valid JSON).' }),
          },
        },
      },
      async () => ({ status: 'ok' }),
    );
    app.get(
      '/readyz',
      {
        config: { public: true },
        schema: {
          tags: [TAGS.operations],
          operationId: 'getReadiness',
          summary: 'Readiness',
          description:
            'Whether this process can serve: its metadata store (and Redis, when scaled out) answer. For a ' +
            'load balancer or a readiness probe. No API key.',
          response: {
            200: Status('Ready to serve.', 'ready'),
            503: Status('Not ready: a store it needs does not answer.', 'unavailable'),
            ...errors({ 400: 'The request is malformed (for example, a body that is not valid JSON).' }),
          },
        },
      },
      async (_req, reply) => {
        const ready = await isReady().catch(() => false);
        return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable' });
      },
    );
  };
