import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Authenticator } from '../../auth/authenticator.js';
import type { Principal } from '../../auth/principal.js';

declare module 'fastify' {
  interface FastifyRequest {
    principalOrNull: Principal | null;
  }
  interface FastifyContextConfig {
    /** Routes that answer without an API key (health, OpenAPI). */
    public?: boolean;
  }
}

/** Resolves the caller before the handler runs, on every route not marked `config: { public: true }`. */
export function registerAuthentication(
  app: FastifyInstance,
  authenticator: Pick<Authenticator, 'authenticate'>,
): void {
  app.decorateRequest('principalOrNull', null);
  app.addHook('onRequest', async (request) => {
    if (request.is404 || request.routeOptions.config.public) return;
    request.principalOrNull = await authenticator.authenticate(request.headers.authorization);
  });
}

/** The authenticated caller; only valid on non-public routes. */
export function principal(request: FastifyRequest): Principal {
  if (!request.principalOrNull) throw new Error('principal() called on a public route');
  return request.principalOrNull;
}
