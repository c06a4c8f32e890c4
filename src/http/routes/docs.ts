import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/**
 * Marks the docs routes public (no API key, no rate limit) as they are added. Call it before the
 * authentication and rate-limit setup reads route configs, i.e. before registerRateLimit.
 */
export function markDocsPublic(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    if (route.url === '/api/docs' || route.url.startsWith('/api/docs/')) {
      route.config = { ...route.config, public: true };
    }
  });
}

/**
 * The API reference at /api/docs: Swagger UI over /api/openapi.json, its assets served from the package
 * (no CDN, so it works on a closed network). Public, like the document it shows. The policy is the
 * plugin's own (hashes of its two inline scripts) without what a closed network has no use for: fonts and
 * styles from anywhere (`https:`) and the validator badge from validator.swagger.io (turned off below).
 *
 * Swagger UI replaced a hand-made page of ~60 lines: it shows request and response schemas, examples and
 * tags the way readers of other APIs expect, and it is maintained by others.
 */
export async function registerDocs(app: FastifyInstance): Promise<void> {
  await app.register(swaggerUi, {
    routePrefix: '/api/docs',
    staticCSP: true,
    transformStaticCSP: (header) =>
      header
        .replace("font-src 'self' https: data:", "font-src 'self' data:")
        .replace("img-src 'self' data: validator.swagger.io", "img-src 'self' data:")
        .replace("style-src 'self' https:", "style-src 'self'")
        .replace(' upgrade-insecure-requests;', '')
        .replace("frame-ancestors 'self'", "frame-ancestors 'none'"),
    uiConfig: {
      docExpansion: 'list',
      deepLinking: true,
      displayOperationId: false,
      defaultModelsExpandDepth: 0,
      validatorUrl: null,
    },
  });
}
