import pino, { type Logger } from 'pino';

/** Redacted wherever they appear in a log line. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  '*.password',
  '*.passwd',
  '*.configuration.password',
  '*.configuration.passwd',
  '*.secretKey',
  '*.partnerKey',
  '*.secret',
];

/**
 * URL parameters whose values never reach a log: `query` carries a tenant's SQL (Polytomic's SDKs send
 * it there), and the others are how secrets usually travel in a URL.
 */
const SECRET_PARAMS = /^(query|password|passwd|secret|token|access_token|api_key|apikey|key|signature|sig)$/i;

/** The URL with the values of secret-looking parameters replaced, for request logs. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name.replaceAll('+', ' '));
      } catch {
        // A malformed escape is logged as sent (it is only a name).
      }
      return eq >= 0 && SECRET_PARAMS.test(decoded) ? `${name}=[redacted]` : pair;
    });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

/** The request as Fastify logs it, with the URL redacted (Fastify's own serializer would log it whole). */
interface LoggedRequest {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number };
}

/** One structured (JSON lines) logger per process, shared by the HTTP layer and the worker. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      req: (req: LoggedRequest) => ({
        method: req.method,
        url: req.url === undefined ? undefined : redactUrl(req.url),
        host: req.host,
        remoteAddress: req.ip,
        remotePort: req.socket?.remotePort,
      }),
    },
  });
}
