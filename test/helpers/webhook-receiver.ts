import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { REPO_ROOT } from './process.js';

/** One POST as the receiver got it. */
export interface Delivery {
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The raw body, as signed. */
  body: string;
  json: any;
}

/** A callback receiver on 127.0.0.1 (or another loopback address) that records what arrives. */
export interface WebhookReceiver {
  /** http://<host>:<port> */
  url: string;
  port: number;
  deliveries: Delivery[];
  /** The statuses to answer with, in turn; once used up, 200. */
  answers: number[];
  close(): Promise<void>;
}

export async function startReceiver(host = '127.0.0.1'): Promise<WebhookReceiver> {
  const deliveries: Delivery[] = [];
  const answers: number[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      deliveries.push({ path: req.url ?? '', headers: req.headers, body, json });
      res.writeHead(answers.shift() ?? 200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://${host}:${port}`,
    port,
    deliveries,
    answers,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export type Verify = (
  header: string,
  body: string,
  secret: string,
  toleranceSeconds?: number,
  now?: number,
) => boolean;

/**
 * The signature check exactly as README.md documents it ("Verifying a callback"): the code block that
 * defines verifyQrunSignature, run as it is (without its import line), so the README cannot drift from
 * what qrun sends.
 */
export function documentedVerifier(): Verify {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```js\n([\s\S]*?)```/g)]
    .map((m) => m[1]!)
    .find((code) => code.includes('function verifyQrunSignature'));
  if (block === undefined) throw new Error('README.md has no js block defining verifyQrunSignature');
  const code = block.replace(/^import .*$/gm, '');
  return new Function('createHmac', 'timingSafeEqual', 'Buffer', `${code}\nreturn verifyQrunSignature;`)(
    createHmac,
    timingSafeEqual,
    Buffer,
  ) as Verify;
}

/** The `v1=` signatures of a Qrun-Signature header, and its `t`. */
export function signatureParts(header: string): { t: number; v1: string[] } {
  const parts = header.split(',').map((p) => p.split('='));
  return {
    t: Number(parts.find(([k]) => k === 't')?.[1]),
    v1: parts.filter(([k]) => k === 'v1').map(([, v]) => v!),
  };
}
