import type { Engine } from '../lib/databases.js';
import type { Options } from '../lib/options.js';
import type { Qrun } from '../lib/qrun.js';

/** What the scenarios share: one qrun process for scenarios 1-5 and its connections. */
export interface BenchContext {
  options: Options;
  qrun: Qrun;
  connections: Partial<Record<Engine, string>>;
  /** A finished qrun result of TABLE_QUERY on PostgreSQL; scenario 1 leaves it for 3 and 4. */
  pgResultId?: string;
}

export function connectionOf(ctx: BenchContext, engine: Engine): string {
  const id = ctx.connections[engine];
  if (id === undefined) throw new Error(`no qrun connection for ${engine}`);
  return id;
}

/** Rotates the contenders each repetition so that none always runs first (caches, CPU clocks). */
export function rotated<T>(items: readonly T[], rep: number): T[] {
  const k = rep % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** A finished PostgreSQL result of the whole table, made now if scenario 1 did not run. */
export async function pgResult(ctx: BenchContext, sql: string): Promise<string> {
  if (ctx.pgResultId === undefined) {
    const { id } = await ctx.qrun.run(connectionOf(ctx, 'postgresql'), sql);
    ctx.pgResultId = id;
  }
  return ctx.pgResultId;
}
