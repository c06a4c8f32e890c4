/**
 * Property-based fuzzing of every route (issue 10, item 6), through real HTTP against a real qrun on the
 * deployment under test. The routes come from the server's own OpenAPI document at run time, so a new
 * route is fuzzed without touching this file; test/fuzz/ has the generators and the checks.
 *
 * Sizes: `npx vitest run test/security/fuzz.test.ts` runs the CI size (QRUN_FUZZ_RUNS unset: about 600
 * cases, seed 42, a few seconds); `npm run test:fuzz` runs about 20,000 with a random seed (under a minute
 * embedded, about 70 s scaled out). QRUN_FUZZ_RUNS and QRUN_FUZZ_SEED set either. The seed, the size and
 * the time are printed, so a failure can be replayed; the counterexample is printed as the request sent.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CONSOLE_PATHS,
  HIDDEN_PATHS,
  caseArb,
  describeCase,
  operationsOf,
  toWire,
  type Case,
  type Operation,
} from '../fuzz/cases.js';
import { envelopeProblems, responseProblems } from '../fuzz/check.js';
import { send, sendRaw, type WireResponse } from '../fuzz/http.js';
import { rawCaseArb, type RawCase } from '../fuzz/raw-cases.js';
import { buildWorld, PG_CONFIG, type World } from '../fuzz/world.js';
import { onScaleOut } from '../helpers/deployment.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const LONG = process.env.QRUN_FUZZ_RUNS !== undefined;
const RUNS = Math.max(50, Number(process.env.QRUN_FUZZ_RUNS ?? 600));
const SEED =
  process.env.QRUN_FUZZ_SEED !== undefined
    ? Number(process.env.QRUN_FUZZ_SEED)
    : LONG
      ? Math.floor(Math.random() * 2 ** 31)
      : 42;
/**
 * A tenth of the cases are raw-socket ones, about a tenth come in concurrent batches (of 2 to 7 requests),
 * and the rest are spread evenly over the operations.
 */
const RAW_RUNS = Math.round(RUNS / 10);
const CONCURRENT_RUNS = Math.round(RUNS / 40);
const TIMEOUT_MS = LONG ? 4 * 3600_000 : 300_000;

let s: TestServer;
let world: World;
let ops: Operation[];
let secrets: string[];
/** For the summary line; `answers` counts, by operation, each `status` or `status key` (the error's key). */
const stats = {
  cases: 0,
  batches: 0,
  batchCases: 0,
  rawCases: 0,
  ms: 0,
  answers: new Map<string, Map<string, number>>(),
};

beforeAll(async () => {
  s = await startTestServer({
    // The fuzzer must not be throttled (429 would be a valid answer, but hide the handlers behind it).
    QRUN_RATE_LIMIT_PER_MINUTE: '1000000',
    // A second fence besides the generators' loopback-only host names: nothing else may be dialed.
    QRUN_EGRESS_ALLOW: '127.0.0.0/8,::1',
    // Long-polls answer at once: the fuzzer keeps one query running, and a ?wait=60 on it must not stall.
    QRUN_MAX_WAITS_PER_KEY: '0',
  });
  world = await buildWorld(s);
  const consoleBuilt = (await s.request('GET', '/')).status === 200;
  ops = operationsOf(
    (await s.request('GET', '/api/openapi.json')).body,
    consoleBuilt ? [...HIDDEN_PATHS, ...CONSOLE_PATHS] : HIDDEN_PATHS,
  );
  const keyOf = (header: string) =>
    header.startsWith('Basic ')
      ? Buffer.from(header.slice(6), 'base64').toString().replace(/:$/, '')
      : header.slice('Bearer '.length);
  secrets = [...world.credentials.map((c) => keyOf(c.header)), PG_CONFIG.password];
});

afterAll(async () => {
  if (stats.cases > 0) {
    const lines = [...stats.answers].map(
      ([op, counts]) =>
        `  ${op}: ${[...counts]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([answer, n]) => `${answer}×${n}`)
          .join(', ')}`,
    );
    console.log(
      `fuzz (${onScaleOut ? 'scale-out' : 'embedded'}): seed ${SEED}, ${stats.cases + stats.rawCases} cases ` +
        `(${stats.cases - stats.batchCases} one at a time over ${ops.length} operations, ${stats.batchCases} in ` +
        `${stats.batches} concurrent batches, ${stats.rawCases} raw), ${(stats.ms / 1000).toFixed(1)} s\n` +
        `replay: QRUN_FUZZ_SEED=${SEED} QRUN_FUZZ_RUNS=${RUNS} npx vitest run test/security/fuzz.test.ts\n` +
        `answers by operation:\n${lines.join('\n')}`,
    );
  }
  await s?.close();
});

function tally(c: Case, res: WireResponse): void {
  const op = `${c.op.method} ${c.op.path}`;
  let answer = String(res.status);
  if (res.status >= 400) {
    try {
      answer += ` ${String((JSON.parse(res.body.toString('utf8')) as { key?: unknown }).key)}`;
    } catch {
      // Not JSON: the check reports it.
    }
  }
  const counts = stats.answers.get(op) ?? new Map<string, number>();
  counts.set(answer, (counts.get(answer) ?? 0) + 1);
  stats.answers.set(op, counts);
}

/** Sends one case and checks its answer; throws with the request and the answer when a check fails. */
async function runCase(c: Case): Promise<void> {
  let res: WireResponse;
  stats.cases++;
  try {
    res = await send(s.url, toWire(c));
  } catch (err) {
    // Node's parser answers an oversized HEAD request with a body (it cannot know the method yet), which
    // node:http's client refuses to read: that is not the server failing.
    if (c.method === 'HEAD' && /Parse Error/.test((err as Error).message)) return;
    throw new Error(`no answer: ${(err as Error).message}\n${describeCase(c)}`);
  }
  tally(c, res);
  // A disposable object is gone, or the running query was canceled: make another.
  if (c.target !== undefined) await world.afterAnswer(c.method, c.op.path, c.target, res.status);
  const problems = responseProblems(c, res, world, ops, secrets);
  if (problems.length > 0) {
    throw new Error(`${problems.join('; ')}\n${describeCase(c)}\n→ ${res.status} ${excerpt(res)}`);
  }
}

const excerpt = (res: WireResponse) => {
  const text = res.body.toString('utf8');
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
};

describe('fuzzing every route of the OpenAPI document', () => {
  it('finds the routes in the document, with their parameters and bodies', () => {
    const names = ops.map((o) => `${o.method} ${o.path}`);
    expect(names).toEqual(
      expect.arrayContaining([
        'POST /api/connections/{id}/query',
        'GET /api/queries/{id}',
        'DELETE /api/organizations/{org_id}/users/{id}/keys/{key_id}',
        'GET /metrics',
        'GET /api/docs',
      ]),
    );
    expect(ops.find((o) => o.path === '/api/connections' && o.method === 'POST')?.body).toBeDefined();
    expect(ops.find((o) => o.path === '/api/queries/{id}')?.queryParams).toEqual(
      expect.arrayContaining(['page', 'wait']),
    );
  });

  it(
    'random bodies, query strings, headers, credentials and ids: no 5xx, errors in the envelope, no 2xx for a wrong or foreign key',
    async () => {
      const perOp = Math.max(5, Math.round((RUNS - RAW_RUNS - CONCURRENT_RUNS * 4) / ops.length));
      const failures: string[] = [];
      const started = Date.now();
      for (const [i, op] of ops.entries()) {
        try {
          await fc.assert(
            fc.asyncProperty(caseArb(world, op), runCase),
            // One seed per operation, so that operations do not all get the same sequence of choices.
            { seed: SEED + i, numRuns: perOp },
          );
        } catch (err) {
          // fast-check's message has the counterexample; the property's own error (the cause) says what broke.
          const { message, cause } = err as Error;
          failures.push(
            `${op.method} ${op.path}: ${message}\n${cause instanceof Error ? cause.message : ''}`,
          );
        }
      }
      stats.ms += Date.now() - started;
      expect(failures, failures.join('\n\n')).toEqual([]);
    },
    TIMEOUT_MS,
  );

  it(
    'the same request several times at once, beside others (races on unique names, idempotency keys, deletes): no 5xx',
    async () => {
      const started = Date.now();
      const anyCase = fc.oneof(...ops.map((op) => caseArb(world, op)));
      await fc.assert(
        fc.asyncProperty(
          anyCase,
          fc.integer({ min: 2, max: 5 }),
          fc.array(anyCase, { maxLength: 2 }),
          async (c, copies, others) => {
            stats.batches++;
            stats.batchCases += copies + others.length;
            await Promise.all([...Array.from({ length: copies }, () => runCase(c)), ...others.map(runCase)]);
          },
        ),
        { seed: SEED, numRuns: CONCURRENT_RUNS },
      );
      stats.ms += Date.now() - started;
    },
    TIMEOUT_MS,
  );

  it(
    'bytes no client library would send: an answer, if any, is a 4xx in the envelope or a proper 2xx',
    async () => {
      const started = Date.now();
      await fc.assert(
        fc.asyncProperty(rawCaseArb(world), async (rc: RawCase) => {
          const res = await sendRaw(s.url, rc.bytes);
          stats.rawCases++;
          if (res.status === undefined) return;
          const type = res.headers['content-type'] ?? '';
          expect(res.status, res.raw.toString('latin1').slice(0, 400)).toBeLessThan(500);
          if (res.status >= 400 && rc.method !== 'HEAD') {
            expect(
              envelopeProblems(res.status, type, res.body),
              res.raw.toString('latin1').slice(0, 400),
            ).toEqual([]);
          }
        }),
        { seed: SEED, numRuns: RAW_RUNS },
      );
      stats.ms += Date.now() - started;
    },
    TIMEOUT_MS,
  );

  it('leaves the process up, and every credential of the fuzzer still working', async () => {
    expect((await s.request('GET', '/healthz')).status).toBe(200);
    for (const c of world.credentials) {
      const r = await s.request('GET', '/api/me', { auth: { raw: c.header } });
      expect(r.status, `${c.name}: ${r.text}`).toBe(200);
    }
  });
});

describe('the checks themselves', () => {
  it('tell the envelope from what Node, Fastify or a stack trace would send', () => {
    const check = (status: number, type: string, body: string) =>
      envelopeProblems(status, type, Buffer.from(body));
    const json = 'application/json; charset=utf-8';
    expect(check(404, json, '{"status":404,"message":"No such thing.","key":"not_found"}')).toEqual([]);
    expect(check(400, json, '{"status":400,"message":"x","key":"a","metadata":{"field":"f"}}')).toEqual([]);
    expect(
      check(400, 'application/json', '{"error":"Bad Request","code":"FST_ERR_BAD_URL","statusCode":400}'),
    ).not.toEqual([]);
    expect(check(400, '', '')).not.toEqual([]);
    expect(check(400, json, '{"status":401,"message":"x","key":"a"}')).not.toEqual([]);
    expect(check(400, json, '{"status":400,"message":"","key":"a"}')).not.toEqual([]);
    expect(check(400, json, '{"status":400,"message":"x","key":"NotSnake"}')).not.toEqual([]);
    expect(
      check(
        400,
        json,
        '{"status":400,"message":"TypeError: x\\n    at f (/srv/src/http/app.ts:1:2)","key":"a"}',
      ),
    ).not.toEqual([]);
  });
});

/** What the fuzzer found, pinned as plain cases (each was a 5xx or an answer outside the envelope). */
describe('regressions found by the fuzzer', () => {
  const raw = async (text: string) => {
    const res = await sendRaw(s.url, Buffer.from(text, 'latin1'));
    return {
      ...res,
      problems: envelopeProblems(res.status ?? 0, res.headers['content-type'] ?? '', res.body),
    };
  };
  const admin = () => world.credentials.find((c) => c.name === 'admin')!.header;

  it('an HTTP/1.1 request without Host is 400 in the envelope (Node answered with an empty body)', async () => {
    const r = await raw(`GET /api/me HTTP/1.1\r\nAuthorization: ${admin()}\r\nConnection: close\r\n\r\n`);
    expect(r.status).toBe(400);
    expect(r.problems).toEqual([]);
    // HTTP/1.0 has no Host requirement.
    const old = await raw(`GET /api/me HTTP/1.0\r\nAuthorization: ${admin()}\r\n\r\n`);
    expect(old.status).toBe(200);
  });

  it('an Expect other than 100-continue is 417 in the envelope (Node answered with an empty body)', async () => {
    const r = await raw(
      `GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nConnection: close\r\n\r\n`,
    );
    expect(r.status).toBe(417);
    expect(r.problems).toEqual([]);
    expect(JSON.parse(r.body.toString()).key).toBe('expectation_failed');
  });

  it("a malformed percent-encoding in the path is 400 invalid_url (Fastify's own body before)", async () => {
    for (const path of ['/api/connections/%', '/api/queries/%E0%A4%A', '/api/organizations/%zz/users']) {
      const res = await send(s.url, { method: 'GET', target: path, headers: [['Authorization', admin()]] });
      expect(res.status, path).toBe(400);
      expect(envelopeProblems(res.status, String(res.headers['content-type']), res.body), path).toEqual([]);
      expect(JSON.parse(res.body.toString()).key).toBe('invalid_url');
    }
  });

  it("an overlong path parameter is 400 invalid_id (Fastify's 414 with its own body before)", async () => {
    const res = await send(s.url, {
      method: 'GET',
      target: `/api/connections/${'x'.repeat(5000)}`,
      headers: [['Authorization', admin()]],
    });
    expect(res.status).toBe(400);
    expect(envelopeProblems(res.status, String(res.headers['content-type']), res.body)).toEqual([]);
    const body = JSON.parse(res.body.toString());
    expect(body.key).toBe('invalid_id');
    // The answer does not echo the 5,000 characters back.
    expect(res.body.length).toBeLessThan(300);
  });

  it('numbers beyond what the store holds are 400, not 500 (max_rows: 1e20 was a 500 on PostgreSQL)', async () => {
    const connectionId = world.ids.connection.all[0]!;
    for (const body of [
      { query: 'select 1', max_rows: 1e20 },
      { query: 'select 1', timeout_seconds: 1e20 },
      { query: 'select 1', max_rows: 2 ** 63 },
      { query: 'select 1', timeout_seconds: 2 ** 31 },
    ]) {
      const r = await s.request('POST', `/api/connections/${connectionId}/query`, {
        auth: { bearer: s.adminKey },
        body,
      });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(envelopeProblems(r.status, r.headers.get('content-type') ?? '', Buffer.from(r.text))).toEqual(
        [],
      );
    }
  });
});
