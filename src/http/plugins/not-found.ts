import type { FastifyInstance } from 'fastify';
import FindMyWay, { type HTTPMethod } from 'find-my-way';
import { errorBody } from '../../wire/common.js';

const METHODS: HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/**
 * Unknown paths are 404 and known paths with the wrong method are 405 with an `Allow` header.
 * Fastify treats both as "not found", so routes are mirrored into a second router to tell them apart.
 */
export function registerNotFound(app: FastifyInstance): void {
  const mirror = FindMyWay();
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const m of methods) {
      if (!mirror.hasRoute(m as HTTPMethod, route.url))
        mirror.on(m as HTTPMethod, route.url, () => undefined);
    }
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allowed = METHODS.filter((m) => mirror.find(m, path) !== null);
    if (allowed.length > 0) {
      return reply
        .code(405)
        .header('allow', allowed.join(', '))
        .send(
          errorBody(
            405,
            'method_not_allowed',
            `${request.method} is not allowed on ${path}; use ${allowed.join(' or ')}.`,
          ),
        );
    }
    return reply.code(404).send(errorBody(404, 'not_found', `There is no endpoint at ${path}.`));
  });
}
