/**
 * The fuzzer's two HTTP clients. `send` goes through node:http (keep-alive, so tens of thousands of cases
 * do not run out of ephemeral ports), which lets through anything a real client library could send: any
 * method token, a request target with raw bytes 0x21-0xff (bad percent-encoding included), header values
 * in latin1, repeated headers and any body bytes. `sendRaw` writes bytes on a fresh socket, for what no
 * client library would send (broken framing, control characters, oversized headers).
 */
import http from 'node:http';
import net from 'node:net';

export interface WireRequest {
  method: string;
  /** The request target as sent: path plus `?query`, already percent-encoded (or deliberately not). */
  target: string;
  /** Header names and latin1 values; a name may repeat. */
  headers: [string, string][];
  body?: Buffer;
}

export interface WireResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

/** No answer within this is a failure: nothing the fuzzer sends should keep the server busy that long. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** How long an event stream (`text/event-stream`) is read before the client hangs up. */
const SSE_READ_MS = 500;

let sent = 0;
/** Requests sent since the process started (both clients). */
export function requestsSent(): number {
  return sent;
}

export function send(baseUrl: string, req: WireRequest): Promise<WireResponse> {
  const url = new URL(baseUrl);
  sent++;
  return new Promise((resolve, reject) => {
    // Headers given as an array are sent exactly as listed (repeats and order kept), so Host and the
    // body's length are ours to add.
    const headers = [...req.headers];
    if (!headers.some(([n]) => n.toLowerCase() === 'host')) headers.unshift(['Host', url.host]);
    // No body is Content-Length: 0 where a body may be, as fetch() sends it (node:http would send an empty
    // chunked body, which Fastify treats as a body without a Content-Type).
    const length = req.body?.length ?? (req.method === 'GET' || req.method === 'HEAD' ? undefined : 0);
    if (length !== undefined && !headers.some(([n]) => n.toLowerCase() === 'content-length')) {
      headers.push(['Content-Length', String(length)]);
    }
    const r = http.request({
      agent,
      host: url.hostname,
      port: url.port,
      method: req.method,
      path: req.target,
      headers: headers.flat(),
    });
    r.setTimeout(REQUEST_TIMEOUT_MS, () =>
      r.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)),
    );
    r.on('response', (res) => {
      const chunks: Buffer[] = [];
      const done = () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', done);
      res.on('error', reject);
      // An event stream lasts as long as its query: take what comes in a moment, then hang up.
      if (String(res.headers['content-type']).startsWith('text/event-stream')) {
        setTimeout(() => {
          done();
          r.destroy();
        }, SSE_READ_MS);
      }
    });
    r.on('error', reject);
    r.end(req.body);
  });
}

export interface RawResponse {
  /** undefined when the server closed the connection without answering. */
  status?: number;
  headers: Record<string, string>;
  body: Buffer;
  raw: Buffer;
}

/** How long a raw request may sit unanswered before the client half-closes to say "that is all". */
const RAW_IDLE_MS = 250;

/**
 * Writes `bytes` and reads until the server closes the connection (the cases send Connection: close), or
 * the timeout. Half-closing right away would race the answer: Node's server drops a request whose client
 * has sent FIN before the answer is written. So the half-close waits until the server has been quiet for
 * RAW_IDLE_MS, for requests it is still waiting to see the end of (a chunked body that never ends).
 */
export function sendRaw(baseUrl: string, bytes: Buffer, timeoutMs = 10_000): Promise<RawResponse> {
  const url = new URL(baseUrl);
  sent++;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port), allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let idle: NodeJS.Timeout | undefined;
    const quiet = () => {
      clearTimeout(idle);
      idle = setTimeout(() => socket.end(), RAW_IDLE_MS);
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server neither answered nor closed within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(bytes, quiet));
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      quiet();
    });
    // The server is done (it closes after an answer with Connection: close): so are we.
    socket.on('end', () => socket.end());
    // A reset after (or instead of) an answer is the server refusing the bytes: still an outcome.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      clearTimeout(idle);
      resolve(parseRawResponse(Buffer.concat(chunks)));
    });
  });
}

/** Parses the first final HTTP/1.x response in `raw` (after any 1xx), with its Content-Length or chunked body. */
export function parseRawResponse(raw: Buffer): RawResponse {
  let start = 0;
  while (/^HTTP\/1\.[01] 1\d\d/.test(raw.subarray(start, start + 12).toString('latin1'))) {
    const interim = raw.indexOf('\r\n\r\n', start);
    if (interim < 0) break;
    start = interim + 4;
  }
  const end = raw.indexOf('\r\n\r\n', start);
  if (end < 0) return { headers: {}, body: Buffer.alloc(0), raw };
  const head = raw.subarray(start, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1]);
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = raw.subarray(end + 4);
  if (headers['content-length'] !== undefined) {
    body = body.subarray(0, Number(headers['content-length']));
  } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    body = dechunk(body);
  }
  return { status: Number.isNaN(status) ? undefined : status, headers, body, raw };
}

function dechunk(data: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!(size > 0)) break;
    out.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(out);
}
