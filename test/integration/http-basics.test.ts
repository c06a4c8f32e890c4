import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ QRUN_BODY_LIMIT_BYTES: '4096', QRUN_MAX_QUERY_BYTES: '1024' });
});
afterAll(() => s.close());

describe('HTTP basics', () => {
  it('healthz and readyz answer without a key', async () => {
    expect((await s.request('GET', '/healthz')).body).toEqual({ status: 'ok' });
    const ready = await s.request('GET', '/readyz');
    expect(ready.status).toBe(200);
  });

  it('unknown routes are 404 with the error envelope', async () => {
    const r = await s.request('GET', '/api/nope', { auth: { bearer: s.adminKey } });
    expect(r.status).toBe(404);
    expect(r.body).toMatchObject({ status: 404, key: 'not_found' });
  });

  it('a wrong method is 405 with Allow', async () => {
    const r = await s.request('PATCH', '/api/connections', { auth: { bearer: s.adminKey } });
    expect(r.status).toBe(405);
    expect(r.body.key).toBe('method_not_allowed');
    expect(r.headers.get('allow')).toContain('GET');
    expect(r.headers.get('allow')).toContain('POST');
  });

  it('malformed JSON is 400 invalid_json', async () => {
    const r = await s.request('POST', '/api/connections', {
      auth: { bearer: s.adminKey },
      rawBody: '{"name": ',
    });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ status: 400, key: 'invalid_json' });
  });

  it('a body over the limit is 413', async () => {
    const r = await s.request('POST', '/api/connections', {
      auth: { bearer: s.adminKey },
      body: { name: 'x'.repeat(10_000), type: 'sqlite', configuration: {} },
    });
    expect(r.status).toBe(413);
    expect(r.body.key).toBe('payload_too_large');
  });

  it('a body with a prototype-poisoning key is 400 saying so', async () => {
    const r = await s.request('POST', '/api/organizations', {
      auth: { bearer: s.partnerKey },
      rawBody: '{"name": "x", "__proto__": {"admin": true}}',
    });
    expect(r.status).toBe(400);
    expect(r.body.key).toBe('invalid_json');
    expect(r.body.message).toContain('__proto__');
  });

  it('oversized headers get the error envelope too (431)', async () => {
    const r = await s.request('GET', '/api/me', { auth: { raw: `Bearer ${'a'.repeat(100_000)}` } });
    expect(r.status).toBe(431);
    expect(r.body).toMatchObject({ status: 431, key: 'headers_too_large' });
  });

  it('a non-JSON content type is 415', async () => {
    const r = await s.request('POST', '/api/connections', {
      auth: { bearer: s.adminKey },
      rawBody: 'name=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(r.status).toBe(415);
  });

  it('errors never carry a stack trace', async () => {
    const r = await s.request('POST', '/api/connections', { auth: { bearer: s.adminKey }, rawBody: '[' });
    expect(r.text).not.toMatch(/at .*\.(js|ts):\d+/);
  });

  it('serves an OpenAPI 3.1 document covering the routes', async () => {
    const r = await s.request('GET', '/api/openapi.json');
    expect(r.status).toBe(200);
    expect(r.body.openapi).toBe('3.1.0');
    for (const p of [
      '/api/me',
      '/api/connections',
      '/api/connections/{id}',
      '/api/connection_types',
      '/api/organizations/{org_id}/users',
    ]) {
      expect(Object.keys(r.body.paths)).toContain(p);
    }
    expect(r.body.components.schemas.Error).toBeDefined();
  });

  it('documents every operation: summary, description, operationId, tag, a 4xx response and an example', async () => {
    const doc = (await s.request('GET', '/api/openapi.json')).body as {
      tags: Array<{ name: string }>;
      servers: unknown[];
      paths: Record<string, Record<string, Record<string, unknown>>>;
    };
    const tagNames = doc.tags.map((t) => t.name);
    // The reference opens on the query runner; the operator's routes come last.
    expect(tagNames[0]).toBe('Query runner');
    expect(tagNames.at(-1)).toBe('Operations');
    expect(doc.servers.length).toBeGreaterThan(0);
    const ids = new Set<string>();
    const problems: string[] = [];
    let operations = 0;
    for (const [route, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        operations++;
        const name = `${method.toUpperCase()} ${route}`;
        for (const field of ['summary', 'description', 'operationId'] as const) {
          if (typeof op[field] !== 'string' || (op[field] as string).length === 0)
            problems.push(`${name}: no ${field}`);
        }
        const id = op.operationId as string;
        if (ids.has(id)) problems.push(`${name}: operationId ${id} used twice`);
        ids.add(id);
        const tags = op.tags as string[] | undefined;
        if (tags?.length !== 1 || !tagNames.includes(tags[0]!))
          problems.push(`${name}: not under one declared tag`);
        const responses = op.responses as Record<
          string,
          {
            content?: Record<
              string,
              { example?: unknown; examples?: unknown; schema?: { examples?: unknown } }
            >;
          }
        >;
        if (!Object.keys(responses).some((code) => code.startsWith('4')))
          problems.push(`${name}: no 4xx response`);
        const media = [
          ...Object.entries(responses)
            .filter(([code]) => code.startsWith('2'))
            .flatMap(([, r]) => Object.values(r.content ?? {})),
          ...Object.values(
            (op.requestBody as { content?: Record<string, never> } | undefined)?.content ?? {},
          ),
        ];
        const noBody = Object.keys(responses).includes('204');
        if (
          !noBody &&
          !media.some(
            (m) => m.example !== undefined || m.examples !== undefined || m.schema?.examples !== undefined,
          )
        ) {
          problems.push(`${name}: no example`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(operations).toBeGreaterThanOrEqual(33);
  });

  it('serves the reference (Swagger UI) without a key, from its own assets, under a strict policy', async () => {
    const page = await fetch(`${s.url}/api/docs`, { redirect: 'follow' });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).toContain('swagger-ui');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).not.toMatch(/https:|validator\.swagger\.io/);
    // Every script and style it loads is served here: no CDN.
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThan(0);
    for (const asset of assets) expect(asset).not.toMatch(/^(https?:)?\/\//);
    const init = await fetch(`${s.url}/api/docs/static/swagger-initializer.js`);
    expect(init.status).toBe(200);
    // It loads the document relative to the page: /api/docs/json.
    expect(await init.text()).toContain("resolveUrl('./json')");
    const spec = await s.request('GET', '/api/docs/json');
    expect(spec.status).toBe(200);
    expect(spec.body.openapi).toBe('3.1.0');
  });

  it('serves Prometheus metrics, with the duration of every route', async () => {
    const count = async (labels: string) => {
      const text = (await s.request('GET', '/metrics')).text;
      const line = text
        .split('\n')
        .find((l) => l.startsWith(`qrun_http_request_duration_seconds_count{${labels}}`));
      return line === undefined ? 0 : Number(line.split(' ').pop());
    };
    const me = 'method="GET",route="/api/me",status="200"';
    const before = await count(me);
    await s.request('GET', '/api/me', { auth: { bearer: s.adminKey } });
    await s.request('GET', '/api/me', { auth: { bearer: s.adminKey } });
    expect(await count(me)).toBe(before + 2);
    // Failures are observed too, by their route pattern (not the URL, so ids don't explode the labels).
    await s.request('GET', '/api/queries/00000000-0000-4000-8000-000000000000', {
      auth: { bearer: s.adminKey },
    });
    expect(await count('method="GET",route="/api/queries/:id",status="404"')).toBeGreaterThan(0);
    const r = await s.request('GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.text).toContain('qrun_queries_running');
  });

  it('readyz answers 503 once the store is closed', async () => {
    const t = await startTestServer();
    try {
      expect((await t.request('GET', '/readyz')).status).toBe(200);
      await t.qrun.close();
      const r = await t.request('GET', '/readyz');
      expect(r.status).toBe(503);
      expect(r.body).toEqual({ status: 'unavailable' });
    } finally {
      await t.close();
    }
  });
});
