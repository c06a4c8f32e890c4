import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The web console's responses may load scripts, styles and data from this origin only, may not be framed,
 * and send nothing elsewhere. Vite emits no inline script or style; CodeMirror and uPlot style elements
 * through the CSSOM (constructed style sheets, element.style), which CSP does not restrict.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "worker-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};
const COMPRESSIBLE = new Set(['.html', '.js', '.css', '.svg', '.json', '.txt']);
/** Fingerprinted files never change under their name. */
const IMMUTABLE = 'public, max-age=31536000, immutable';

interface Asset {
  body: Buffer;
  /** Made on the first request that accepts gzip, then kept. */
  gzip: Buffer | undefined;
  type: string;
  etag: string;
  compressible: boolean;
}

export interface ConsoleOptions {
  /** The built console (`dist/web`); found from the package root when not given. */
  root?: string;
}

/**
 * Serves the web console built by `npm run build` (web/ → dist/web/): `GET /` is index.html (no-cache,
 * revalidated by ETag) and `GET /assets/<file>` the fingerprinted bundle (cached for a year). Both are
 * public (no API key, no rate limit) and hidden from the OpenAPI document. The console routes by the URL
 * fragment (`/#/history`), so no other path is taken: everything under /api and the operations endpoints
 * answer exactly as without the console. Files are read on first request and kept in memory.
 */
export const consoleRoutes =
  (options: ConsoleOptions = {}): FastifyPluginAsync =>
  async (app) => {
    const root = options.root ?? findBuiltConsole();
    const assetNames = root ? listAssets(path.join(root, 'assets')) : new Set<string>();
    const cache = new Map<string, Asset>();
    const load = (file: string): Asset => {
      let asset = cache.get(file);
      if (!asset) {
        const body = readFileSync(file);
        const ext = path.extname(file);
        asset = {
          body,
          gzip: undefined,
          type: TYPES[ext] ?? 'application/octet-stream',
          etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
          compressible: COMPRESSIBLE.has(ext),
        };
        cache.set(file, asset);
      }
      return asset;
    };
    const route = { config: { public: true }, schema: { hide: true } } as const;

    if (!root) {
      app.log.warn('web console: dist/web/index.html not found; run `npm run build` to build it');
    }

    app.get('/', route, async (request, reply) => {
      if (!root) {
        return withHeaders(reply)
          .code(503)
          .header('cache-control', 'no-store')
          .type('text/html; charset=utf-8')
          .send(NOT_BUILT);
      }
      return send(request, reply, load(path.join(root, 'index.html')), 'no-cache');
    });

    app.get<{ Params: { file: string } }>('/assets/:file', route, async (request, reply) => {
      const { file } = request.params;
      if (!root || !assetNames.has(file)) {
        return withHeaders(reply)
          .code(404)
          .send({ status: 404, key: 'not_found', message: `There is no file at /assets/${file}.` });
      }
      return send(request, reply, load(path.join(root, 'assets', file)), IMMUTABLE);
    });
  };

function send(
  request: FastifyRequest,
  reply: FastifyReply,
  asset: Asset,
  cacheControl: string,
): FastifyReply {
  withHeaders(reply).header('cache-control', cacheControl).header('etag', asset.etag).type(asset.type);
  if (asset.compressible) reply.header('vary', 'accept-encoding');
  if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
  if (asset.compressible && acceptsGzip(request.headers['accept-encoding'])) {
    asset.gzip ??= gzipSync(asset.body, { level: 9 });
    return reply.header('content-encoding', 'gzip').send(asset.gzip);
  }
  return reply.send(asset.body);
}

function withHeaders(reply: FastifyReply): FastifyReply {
  return reply.headers(SECURITY_HEADERS);
}

function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  return header.split(',').some((part) => {
    const [name, ...params] = part.split(';').map((t) => t.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    return (name === 'gzip' || name === '*') && (q === undefined || Number(q.slice(2)) > 0);
  });
}

/** File names in the flat assets folder (Vite writes every bundle file there). */
function listAssets(dir: string): Set<string> {
  if (!existsSync(dir)) return new Set();
  return new Set(
    readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => e.name),
  );
}

/** `dist/web` under the package root, found by walking up from this file (works from src/ and dist/). */
export function findBuiltConsole(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, 'package.json'))) {
      const web = path.join(dir, 'dist', 'web');
      return existsSync(path.join(web, 'index.html')) ? web : undefined;
    }
    dir = path.dirname(dir);
  }
  return undefined;
}

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>qrun</title></head>
<body><h1>qrun</h1><p>The web console is not built. Run <code>npm run build</code> (or <code>npm start</code>,
which builds first), then reload. The API is at <a href="/api/docs">/api/docs</a>.</p></body></html>
`;
