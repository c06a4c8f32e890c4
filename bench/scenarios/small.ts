import { pgSelectOne } from '../lib/references.js';
import { makeRow, ratioAtMost, type ResultRow } from '../lib/report.js';
import { median, percentile } from '../lib/stats.js';
import { log, timed } from '../lib/util.js';
import { connectionOf, rotated, type BenchContext } from './context.js';

/**
 * Scenario 5: `SELECT 1` on PostgreSQL, submit → terminal status with the ?wait= long-poll, one
 * query at a time. The reference is what a client without qrun does for one query: a new
 * connection, SELECT 1, close. Target (issue 15, item 3): p50 within 2.0× of it.
 */
export async function small(ctx: BenchContext): Promise<ResultRow[]> {
  const { options, qrun } = ctx;
  const connection = connectionOf(ctx, 'postgresql');
  const contenders: { name: string; run: () => Promise<unknown> }[] = [
    { name: 'qrun', run: () => qrun.run(connection, 'SELECT 1') },
    { name: 'pg: connect, SELECT 1, close', run: () => pgSelectOne(options.database) },
  ];
  // Warm-up: JIT and the first connection's costs.
  for (const c of contenders) for (let i = 0; i < 10; i++) await c.run();

  const p50 = new Map(contenders.map((c) => [c.name, [] as number[]]));
  const p99 = new Map(contenders.map((c) => [c.name, [] as number[]]));
  for (let rep = 0; rep < options.reps; rep++) {
    for (const c of rotated(contenders, rep)) {
      const ms: number[] = [];
      for (let i = 0; i < options.smallQueries; i++) {
        const { seconds } = await timed(c.run);
        ms.push(seconds * 1000);
      }
      p50.get(c.name)!.push(percentile(ms, 50));
      p99.get(c.name)!.push(percentile(ms, 99));
      log(
        `SELECT 1 rep ${rep + 1}/${options.reps}: ${c.name} p50 ${percentile(ms, 50).toFixed(2)} ms, ` +
          `p99 ${percentile(ms, 99).toFixed(2)} ms`,
      );
    }
  }
  const ref = contenders[1]!.name;
  const row = (name: 'p50' | 'p99', values: Map<string, number[]>, withTarget: boolean) =>
    makeRow({
      scenario: '5. Small query',
      measure: `SELECT 1 submit → done (?wait=), ${name} of ${options.smallQueries}`,
      unit: 'ms',
      qrun: median(values.get('qrun')!),
      reference: { name: ref, value: median(values.get(ref)!) },
      target: withTarget ? ratioAtMost(2) : undefined,
      samples: { qrun: values.get('qrun')!, reference: values.get(ref)! },
    });
  return [row('p50', p50, true), row('p99', p99, false)];
}
