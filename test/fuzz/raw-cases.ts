/**
 * Requests no client library would send, written byte by byte on a socket: broken request lines and
 * framing, control characters and raw non-ASCII bytes in headers, oversized headers, conflicting
 * lengths, pipelining. Whatever Node's HTTP parser or Fastify makes of them, an answer (if any) must be
 * a 4xx in the envelope, or a proper 2xx, never a 5xx.
 */
import fc from 'fast-check';
import type { World } from './world.js';

export interface RawCase {
  bytes: Buffer;
  /** The method as written, to know a HEAD answer has no body. */
  method: string;
}

const latin1Bytes = (maxLength: number) =>
  fc.uint8Array({ maxLength }).map((b) => Buffer.from(b).toString('latin1'));

export function rawCaseArb(world: World): fc.Arbitrary<RawCase> {
  const admin = world.credentials.find((c) => c.name === 'admin')!.header;
  const id = world.ids.connection.all[0]!;
  const method = fc.oneof(
    { arbitrary: fc.constantFrom('GET', 'POST'), weight: 6 },
    fc.constantFrom(
      'PUT',
      'DELETE',
      'FOO',
      'get',
      'PROPFIND',
      'M-SEARCH',
      'OPTIONS',
      '',
      'GET GET',
      'G\u0000T',
    ),
  );
  const target = fc.oneof(
    {
      arbitrary: fc.constantFrom(
        '/api/me',
        '/api/connections',
        `/api/connections/${id}`,
        `/api/connections/${id}/query`,
        '/healthz',
      ),
      weight: 6,
    },
    fc.constantFrom(
      '*',
      'http://127.0.0.1/api/me',
      '',
      '/api/me?x=%',
      '/api/%00',
      '//api/me',
      '/api/me#frag',
      '/api/../api/me',
      '/api/me/',
      '/API/ME',
      `/api/connections/${id}%2Fquery`,
      '/api/me?' + 'a'.repeat(20_000),
    ),
    latin1Bytes(40).map((b) => `/api/connections/${b}`),
  );
  const version = fc.oneof(
    { arbitrary: fc.constant('HTTP/1.1'), weight: 8 },
    fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2', 'HTTP/0.9', '', 'http/1.1', 'HTTP/1.1 extra'),
  );
  const header = fc.oneof(
    { arbitrary: fc.constant(`Authorization: ${admin}`), weight: 4 },
    fc.constantFrom(
      'Content-Type: application/json',
      'Content-Length: abc',
      'Content-Length: -1',
      'Content-Length: 0',
      'Content-Length: 2\r\nContent-Length: 3',
      'Content-Length: 999999999999999999999',
      'Transfer-Encoding: chunked',
      'Transfer-Encoding: gzip, chunked',
      'Transfer-Encoding: identity',
      'X-Folded: a\r\n b',
      'No-Colon-Here',
      'Host : x',
      ': empty-name',
      'Expect: 100-continue',
      'Expect: something-else',
      'Idempotency-Key: fuzz-raw-0001',
      'X-Big: ' + 'a'.repeat(20_000),
      Array.from({ length: 300 }, (_, i) => `X-Many-${i}: ${i}`).join('\r\n'),
      'Authorization: Bearer \u0001\u0002',
      'Authorization: Basic \u00ff\u00fe',
      `Authorization: ${admin}\u0000`,
      'Connection: keep-alive, Upgrade',
      'Upgrade: websocket',
    ),
    latin1Bytes(60).map((v) => `X-Raw: ${v}`),
    latin1Bytes(60).map((v) => `Authorization: Bearer ${v}`),
  );
  const body = fc.oneof(
    { arbitrary: fc.constant(''), weight: 4 },
    fc.constantFrom(
      '{"query":"select 1"}',
      '{',
      'zz\r\n',
      '0\r\n\r\n',
      '5\r\nhello\r\n0\r\n\r\n',
      `GET /api/me HTTP/1.1\r\nHost: x\r\n\r\n`,
    ),
    latin1Bytes(120),
  );
  return fc
    .record({
      method,
      target,
      version,
      headers: fc.array(header, { maxLength: 4 }),
      withHost: fc.oneof({ arbitrary: fc.constant(true), weight: 9 }, fc.constant(false)),
      body,
      eol: fc.oneof({ arbitrary: fc.constant('\r\n'), weight: 9 }, fc.constant('\n')),
    })
    .map(({ method: m, target: t, version: v, headers, withHost, body: b, eol }) => {
      const lines = [`${m} ${t} ${v}`.trimEnd()];
      if (withHost) lines.push('Host: 127.0.0.1');
      lines.push(...headers.map((h) => h.replace(/\r\n/g, eol)), 'Connection: close');
      const bytes = Buffer.from(`${lines.join(eol)}${eol}${eol}${b}`, 'latin1');
      const rc: RawCase = { bytes, method: m };
      return Object.assign(rc, {
        [fc.toStringMethod]: () => JSON.stringify(bytes.toString('latin1').slice(0, 600)),
      });
    });
}
