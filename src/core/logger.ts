import pino, { type Logger } from 'pino';

/** Redacted wherever they appear in a log line. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  '*.password',
  '*.configuration.password',
  '*.secretKey',
  '*.partnerKey',
];

/** One structured (JSON lines) logger per process, shared by the HTTP layer and the worker. */
export function createLogger(level: string): Logger {
  return pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } });
}
