import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import autocannon, { type Result } from 'autocannon';
import { TABLE_QUERY } from '../lib/databases.js';
import { makeRow, ratioAtLeast, type ResultRow } from '../lib/report.js';
import { median } from '../lib/stats.js';
import { ROOT, freePort, log, startChild, waitForHttp } from '../lib/util.js';
import { pgResult, rotated, type BenchContext } from './context.js';
import { walkPages } from './readback.js';

/**
 * Scenario 4: autocannon, random pages of the finished 1,000,000-row result, against a plain Fastify
 * route serving the very same response bytes from memory. autocannon runs in this process; both
 * servers are child processes on 127.0.0.1, so the client's CPU cost is the same on both sides.
 * With `--pin` (and `taskset` and two CPUs or more), the load generator runs on the last CPU and the
 * servers (every thread, the thread pool included) on the others, so that the servers' figures are not the
 * share of a core they won from autocannon.
 */
export async function serve(ctx: BenchContext): Promise<ResultRow[]> {
  const { options, qrun } = ctx;
  const id = await pgResult(ctx, TABLE_QUERY);
  const { pages } = await walkPages(qrun, id, true);

  const dir = mkdtempSync(path.join(tmpdir(), 'qrun-bench-pages-'));
  const port = await freePort();
  pages.forEach((page, i) => writeFileSync(path.join(dir, `${i}.json`), page.body));
  const plain = startChild(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(ROOT, 'bench/servers/plain-pages.ts'),
      String(port),
      dir,
      String(pages.length),
    ],
    { cwd: ROOT },
  );
  const unpin = options.pin ? pin([qrun.pid, plain.pid]) : () => undefined;
  try {
    const plainBase = `http://127.0.0.1:${port}`;
    await waitForHttp(`${plainBase}/healthz`, plain);
    // Same bytes on both sides, or the comparison means nothing.
    const last = pages.length - 1;
    const plainLast = Buffer.from(await (await fetch(`${plainBase}/pages/${last}`)).arrayBuffer());
    if (!plainLast.equals(pages[last]!.body)) throw new Error('the plain route does not serve qrun’s bytes');

    const random = () => Math.floor(Math.random() * pages.length);
    const load = (base: string, headers: Record<string, string>, pathOf: (i: number) => string) =>
      autocannon({
        url: base,
        connections: options.connections,
        duration: options.duration,
        headers,
        requests: [{ setupRequest: (req) => ({ ...req, path: pathOf(random()) }) }],
      });
    const contenders = [
      {
        name: 'qrun',
        run: () => load(qrun.base, { authorization: qrun.authorization }, (i) => pages[i]!.url),
      },
      { name: 'plain', run: () => load(plainBase, {}, (i) => `/pages/${i}`) },
    ];
    const results = new Map(contenders.map((c) => [c.name, [] as Result[]]));
    for (let rep = 0; rep < options.reps; rep++) {
      for (const c of rotated(contenders, rep)) {
        const result = await c.run();
        if (result.errors + result.timeouts + result.non2xx > 0) {
          throw new Error(
            `${c.name}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx answers`,
          );
        }
        results.get(c.name)!.push(result);
        log(
          `page serving rep ${rep + 1}/${options.reps}: ${c.name} ${Math.round(rps(result))} req/s, ` +
            `p99 ${result.latency.p99} ms`,
        );
      }
    }
    const q = results.get('qrun')!;
    const p = results.get('plain')!;
    const scenario = '4. Page serving';
    const conns = `${options.connections} connections, random pages`;
    return [
      makeRow({
        scenario,
        measure: `requests/s, ${conns}`,
        unit: 'req/s',
        qrun: median(q.map(rps)),
        reference: { name: 'plain Fastify route, same bytes from memory', value: median(p.map(rps)) },
        target: ratioAtLeast(0.8),
        samples: { qrun: q.map(rps), reference: p.map(rps) },
      }),
      makeRow({
        scenario,
        measure: `p99 latency, ${conns}`,
        unit: 'ms',
        qrun: median(q.map((r) => r.latency.p99)),
        reference: {
          name: 'plain Fastify route, same bytes from memory',
          value: median(p.map((r) => r.latency.p99)),
        },
        samples: { qrun: q.map((r) => r.latency.p99), reference: p.map((r) => r.latency.p99) },
      }),
    ];
  } finally {
    unpin();
    await plain.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Pins this process (the load generator) to the last CPU and `servers` to the others, every thread;
 * returns the undo. Does nothing (and says so) without `taskset` or with a single CPU.
 */
function pin(servers: number[]): () => void {
  const cpus = availableParallelism();
  const set = (pid: number, list: string) =>
    execFileSync('taskset', ['-a', '-p', '-c', list, String(pid)], { stdio: 'ignore' });
  const all = `0-${cpus - 1}`;
  try {
    if (cpus < 2) throw new Error('one CPU');
    set(process.pid, String(cpus - 1));
    for (const pid of servers) set(pid, cpus === 2 ? '0' : `0-${cpus - 2}`);
    log(`page serving: autocannon on CPU ${cpus - 1}, the servers on the others`);
  } catch (err) {
    log(`page serving: not pinned (${err instanceof Error ? err.message : String(err)})`);
  }
  return () => {
    for (const pid of [process.pid, ...servers]) {
      try {
        set(pid, all);
      } catch {
        // The process may have ended; nothing to undo then.
      }
    }
  };
}

/** Completed requests per second over the whole run. */
function rps(result: Result): number {
  return result.requests.total / result.duration;
}
