import { explain, type Api } from '../api/client';
import type { ColumnSchema, QueryResponse, Row } from '../api/types';

/** A page of the result: where it starts, and how many rows it has once it has been read. */
interface PageInfo {
  url: string;
  start: number;
  count?: number;
}

let serials = 0;

/** Parsed pages kept in memory at most (each holds up to QRUN_PAGE_ROWS rows, 1,000 by default). */
const DEFAULT_CACHED_PAGES = 12;

/**
 * A finished query's rows, read page by page on demand.
 *
 * qrun's page tokens are opaque and reachable only through `links.next`, so page k is found by reading
 * pages 0…k-1 first, in order. This class keeps:
 * - `pages`: every page found so far (its URL and first row; its row count once read), a few bytes each;
 * - `cache`: the rows of the most recently used pages (an LRU of at most `maxCachedPages`).
 * `request(from, to)` says which rows are wanted (the grid's visible rows plus a margin). One walker reads
 * the pages that hold them, one request at a time: pages already located are fetched directly, and pages
 * beyond the known ones are walked in order. Pages walked only to find the next link are parsed with
 * JSON.parse and dropped ("skimmed"); pages that hold wanted rows are parsed losslessly and cached. When
 * the wanted rows change mid-walk (the user scrolled back), the walker follows the new target.
 */
export class ResultPages {
  /** Tells two readings of the same query apart (a key for the components showing it). */
  readonly serial = ++serials;
  readonly id: string;
  readonly fields: string[];
  readonly schema: ColumnSchema[];
  /** Rows in the whole result (the response's `count`). */
  readonly total: number;
  readonly truncated: boolean;
  /** The export endpoint, when the server offers it (links.export). */
  readonly exportLink: string | null;
  /** The last error of a page read, as a sentence. */
  error: string | null = null;
  /** The page the walker is reading now (0-based), for the status line. */
  reading: number | null = null;
  /** Pages fetched over the network so far. */
  fetched = 0;

  private readonly pages: PageInfo[] = [];
  private readonly cache = new Map<number, Row[]>();
  private readonly listeners = new Set<() => void>();
  private readonly controller = new AbortController();
  private readonly inflight = new Map<string, Promise<Row[]>>();
  private target: { from: number; to: number } | null = null;
  private walking = false;

  constructor(
    private readonly api: Api,
    first: QueryResponse,
    private readonly maxCachedPages = DEFAULT_CACHED_PAGES,
  ) {
    const d = first.data;
    this.id = d.id;
    this.fields = d.fields ?? [];
    this.schema = d.schema ?? this.fields.map((name) => ({ name, type: '' }));
    const rows = d.results ?? [];
    this.total = d.count ?? rows.length;
    this.truncated = d.truncated ?? false;
    this.exportLink = first.links?.export ?? null;
    this.pages.push({ url: `/api/queries/${d.id}`, start: 0, count: rows.length });
    this.remember(0, rows);
    if (first.links?.next) this.pages.push({ url: first.links.next, start: rows.length });
  }

  /** Called whenever rows arrive or the state changes. Returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops reading (the result is no longer shown). */
  dispose(): void {
    this.controller.abort();
    this.listeners.clear();
    this.cache.clear();
  }

  /** Pages located so far (for tests and the status line). */
  get pagesKnown(): number {
    return this.pages.length;
  }

  /** Pages whose rows are in memory now. */
  get pagesCached(): number {
    return this.cache.size;
  }

  /** Row i when its page is in memory, else undefined (call request() to have it read). */
  rowAt(i: number): Row | undefined {
    const p = this.pageOf(i);
    if (p < 0) return undefined;
    const rows = this.cache.get(p);
    return rows?.[i - this.pages[p]!.start];
  }

  /** Wants rows [from, to) in memory; the walker reads what is missing and notifies as pages arrive. */
  request(from: number, to: number): void {
    from = Math.max(0, Math.min(from, this.total));
    to = Math.max(from, Math.min(to, this.total));
    this.target = { from, to };
    // Keep the wanted pages at the young end of the LRU.
    for (let p = Math.max(0, this.pageOf(from)); p < this.pages.length; p++) {
      const page = this.pages[p]!;
      if (page.start >= to) break;
      const rows = this.cache.get(p);
      if (rows) {
        this.cache.delete(p);
        this.cache.set(p, rows);
      }
    }
    if (!this.walking) void this.walk();
  }

  /**
   * The first `limit` rows in order, a page at a time (for the chart). Pages in memory are used as they
   * are; the others are fetched and parsed with JSON.parse (a chart needs no exact digits) and not kept.
   */
  async scan(limit: number, onRows: (rows: Row[]) => void, signal: AbortSignal): Promise<void> {
    let seen = 0;
    for (let p = 0; seen < limit && p < this.pages.length; p++) {
      signal.throwIfAborted();
      let rows = this.cache.get(p);
      if (!rows) {
        rows = await this.fetch(p, 'skim', signal);
      }
      const take = rows.slice(0, limit - seen);
      seen += take.length;
      onRows(take);
    }
  }

  /** Index of the page holding row i among the pages located so far, or -1. */
  private pageOf(i: number): number {
    let lo = 0;
    let hi = this.pages.length - 1;
    if (hi < 0 || i < 0 || i >= this.total) return -1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.pages[mid]!.start <= i) lo = mid;
      else hi = mid - 1;
    }
    const page = this.pages[lo]!;
    if (page.count !== undefined && i >= page.start + page.count) return -1;
    return lo;
  }

  private async walk(): Promise<void> {
    this.walking = true;
    try {
      for (;;) {
        const target = this.target;
        if (!target || this.controller.signal.aborted) return;
        const step = this.nextStep(target.from, target.to);
        if (!step) return;
        this.reading = step.index;
        this.notify();
        await this.fetch(step.index, step.mode, this.controller.signal);
        this.error = null;
      }
    } catch (err) {
      if (!this.controller.signal.aborted) this.error = explain(err);
    } finally {
      this.walking = false;
      this.reading = null;
      this.notify();
    }
  }

  /** The next page to read for rows [from, to): a located page not in memory, or the next unread one. */
  private nextStep(from: number, to: number): { index: number; mode: 'keep' | 'skim' } | null {
    if (from >= to) return null;
    const last = this.pages.length - 1;
    let p = this.pageOf(from);
    if (p < 0) p = last; // beyond the pages located so far: continue the walk from the last one
    for (; p <= last; p++) {
      const page = this.pages[p]!;
      if (page.start >= to) return null;
      if (page.count === undefined) {
        // Not read yet, so its length is unknown: keep it when it may hold wanted rows.
        return { index: p, mode: page.start + this.typicalPageRows() > from ? 'keep' : 'skim' };
      }
      if (!this.cache.has(p) && page.count > 0) return { index: p, mode: 'keep' };
    }
    return null;
  }

  private typicalPageRows(): number {
    return Math.max(1, this.pages[0]?.count ?? 1);
  }

  /** Reads page p; 'keep' parses exactly and caches, 'skim' only locates the next page. */
  private fetch(p: number, mode: 'keep' | 'skim', signal: AbortSignal): Promise<Row[]> {
    const cached = this.cache.get(p);
    if (cached) return Promise.resolve(cached);
    // Shared only between callers with the same signal, so a chart that stops cannot fail the grid's read.
    const key = `${p}:${mode}:${signal === this.controller.signal ? 'walk' : 'other'}`;
    let pending = this.inflight.get(key);
    if (!pending) {
      const page = this.pages[p]!;
      pending = (async () => {
        this.fetched++;
        const body =
          mode === 'keep'
            ? await this.api.query(page.url, signal)
            : await this.api.json<QueryResponse>('GET', page.url, undefined, signal);
        const rows = body.data.results ?? [];
        if (mode === 'keep') this.remember(p, rows);
        page.count ??= rows.length;
        const next = body.links?.next;
        if (next && p === this.pages.length - 1)
          this.pages.push({ url: next, start: page.start + rows.length });
        this.notify();
        return rows;
      })().finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  private remember(p: number, rows: Row[]): void {
    this.cache.delete(p);
    this.cache.set(p, rows);
    while (this.cache.size > this.maxCachedPages) {
      const oldest = this.cache.keys().next().value as number;
      this.cache.delete(oldest);
    }
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }
}
