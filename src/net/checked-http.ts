import http from 'node:http';
import https from 'node:https';
import { checkedLookup } from './checked-socket.js';
import type { CheckedDestination, EgressPolicy } from './egress-policy.js';

/** Bytes of a response body read before the connection is dropped: only the status matters. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/** The host of an http(s) URL as the egress policy takes it: `[::1]` loses its brackets. */
export function urlHost(url: URL): string {
  const { hostname } = url;
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

export function urlPort(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}

/**
 * Resolves the URL's host once and checks every address with the egress policy (see EgressPolicy.check:
 * AppError 400 host_not_allowed, HostLookupError when the name does not resolve). Opens no socket.
 */
export function checkUrl(policy: EgressPolicy, url: URL): Promise<CheckedDestination> {
  return policy.check({ hostname: urlHost(url), port: urlPort(url), database: '' });
}

export interface CheckedPost {
  url: URL;
  /** From checkUrl(url): the connection goes to these addresses and nowhere else. */
  destination: CheckedDestination;
  body: string;
  headers: Record<string, string>;
  /** The whole exchange, connect to status line, must fit in this. */
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * POSTs `body` to a checked URL and resolves with the answer's HTTP status. The socket dials only the
 * checked addresses (a `lookup` that answers with them, so no second DNS answer can slip in); TLS still
 * verifies the certificate against the URL's host name. No connection pooling, no redirects followed
 * (a 3xx is just a status), the response body is drained up to 64 KiB and otherwise dropped. Rejects on a
 * network error, a timeout or an abort.
 */
export function postChecked(post: CheckedPost): Promise<number> {
  const { url, destination, timeoutMs } = post;
  const client = url.protocol === 'https:' ? https : http;
  const only = destination.addresses.length === 1 ? destination.addresses[0] : undefined;
  const host = urlHost(url);
  return new Promise<number>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, status?: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(status ?? 0);
    };
    const req = client.request(
      {
        method: 'POST',
        protocol: url.protocol,
        // A literal address is dialled as it is; a name is handed to `lookup`, which answers with the checked
        // addresses, and stays the TLS server name and the Host header.
        host: only !== undefined && host === only.address ? only.address : host,
        port: destination.port,
        path: `${url.pathname}${url.search}`,
        headers: { ...post.headers, 'content-length': String(Buffer.byteLength(post.body)) },
        lookup: checkedLookup(destination.addresses),
        agent: false,
        signal: post.signal,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_RESPONSE_BYTES) {
            res.destroy();
            finish(undefined, status);
          }
        });
        res.on('end', () => finish(undefined, status));
        // The status line came: that is the answer, however the body ends.
        res.on('error', () => finish(undefined, status));
        res.on('close', () => finish(undefined, status));
      },
    );
    const timer = setTimeout(
      () => req.destroy(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)),
      timeoutMs,
    );
    req.on('error', (err) => finish(err));
    req.end(post.body);
  });
}
