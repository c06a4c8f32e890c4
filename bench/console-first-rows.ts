/**
 * `npm run bench:console`: the web console in Debian's Chromium against a real qrun and the local
 * PostgreSQL. Prints, for a 1,000,000-row result (`select n, md5(n::text) from generate_series(1,1000000) n`):
 * - done → first rows painted: from the answer that says "done" arriving in the browser (performance mark
 *   `qrun:done`, set by web/src/editor/query-run.ts) to the first frame showing its rows (`qrun:first-rows`,
 *   set by web/src/results/result-grid.tsx after the next animation frame), over several runs;
 * - wheel scrolling: frame intervals while scrolling through rows already read, and while reading on;
 * - Ctrl+End: the time to walk every page to the last row, the pages read and the JS heap after it;
 * - the bundle: the built JS and CSS, raw and gzip (level 9, as qrun serves them).
 * Options: --runs N (default 5), --rows N (default 1000000), --no-scroll-end. No thresholds: figures only.
 * Needs `npm run build` first (the console is served from dist/web).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Page } from 'playwright-core';
import { launchBrowser, openConsole, signIn } from '../test/browser/browser.js';
import { startTestServer } from '../test/helpers/server.js';
import { createPostgresConnection } from '../test/helpers/tenants.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const runs = option('runs', 5);
const rows = option('rows', 1_000_000);
const scrollEnd = !process.argv.includes('--no-scroll-end');

function bundle(): { file: string; raw: number; gzip: number }[] {
  const dir = path.join(ROOT, 'dist/web/assets');
  return readdirSync(dir)
    .filter((f) => /\.(js|css)$/.test(f))
    .map((file) => {
      const body = readFileSync(path.join(dir, file));
      return { file, raw: body.length, gzip: gzipSync(body, { level: 9 }).length };
    });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function setSql(page: Page, sql: string): Promise<void> {
  await page.getByRole('textbox', { name: 'SQL editor' }).click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Backspace');
  await page.keyboard.insertText(sql);
}

/** Frame intervals (ms) while `action` runs. */
async function frames(page: Page, action: () => Promise<void>): Promise<number[]> {
  // A string, not a function: tsx would wrap the named callback in a helper the page does not have.
  await page.evaluate(`(() => {
    window.__frames = [];
    window.__recording = true;
    let last = performance.now();
    const tick = (t) => {
      window.__frames.push(t - last);
      last = t;
      if (window.__recording) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  })()`);
  await action();
  return page.evaluate(() => {
    const w = globalThis as unknown as { __frames: number[]; __recording: boolean };
    w.__recording = false;
    return w.__frames.slice(1);
  });
}

const sql = `select n, md5(n::text) from generate_series(1,${rows}) n`;
// No rate limit here: Ctrl+End reads every page (1,000 for a million rows) in a few seconds, which a
// 600-a-minute key limit (the default) would pause once for its Retry-After.
const server = await startTestServer({ QRUN_RATE_LIMIT_PER_MINUTE: '0' });
const browser = await launchBrowser();
try {
  await createPostgresConnection(server, { bearer: server.adminKey }, 'bench');
  const { page } = await openConsole(browser, server);
  await signIn(page, server.adminKey);
  await page
    .getByTestId('connection-select')
    .locator('option', { hasText: 'bench' })
    .waitFor({ state: 'attached' });
  await setSql(page, sql);

  const firstRows: number[] = [];
  const queryTimes: number[] = [];
  for (let run = 0; run < runs; run++) {
    await page.evaluate(() => performance.clearMarks());
    const started = Date.now();
    await page.getByRole('button', { name: 'Run' }).click();
    const handle = await page.waitForFunction(
      () => {
        type Mark = { startTime: number; detail?: { id?: string } };
        const done = performance.getEntriesByName('qrun:done')[0] as Mark | undefined;
        const painted = performance.getEntriesByName('qrun:first-rows')[0] as Mark | undefined;
        if (!done || !painted || painted.detail?.id !== done.detail?.id) return null;
        return { ms: painted.startTime - done.startTime };
      },
      undefined,
      { timeout: 300_000, polling: 50 },
    );
    const { ms } = (await handle.jsonValue()) as { ms: number };
    queryTimes.push(Date.now() - started);
    firstRows.push(ms);
    console.log(
      `run ${run + 1}: done → first rows painted ${ms.toFixed(1)} ms (submit → painted ${Date.now() - started} ms)`,
    );
  }

  const grid = page.getByRole('grid');
  // Wheel scrolling through the first page and into the next ones (read on demand).
  const wheel = await frames(page, async () => {
    await grid.hover();
    for (let i = 0; i < 80; i++) {
      await page.mouse.wheel(0, 600);
      await page.waitForTimeout(16);
    }
  });

  let endMs: number | null = null;
  let pageReads = 0;
  let heapMb: number | null = null;
  if (scrollEnd) {
    page.on('request', (r) => {
      if (r.url().includes('?page=')) pageReads++;
    });
    await grid.focus();
    const t = Date.now();
    await page.keyboard.press('Control+End');
    await page
      .locator(`[role="row"][aria-rowindex="${rows + 1}"]:not([aria-busy]) [role="gridcell"]`)
      .first()
      .waitFor({ timeout: 600_000 });
    endMs = Date.now() - t;
    heapMb = await page.evaluate(() => {
      // Chromium's non-standard performance.memory.
      const memory = (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory;
      return memory ? memory.usedJSHeapSize / 1024 / 1024 : null;
    });
  }

  const files = bundle();
  const total = files.reduce((a, f) => ({ raw: a.raw + f.raw, gzip: a.gzip + f.gzip }), { raw: 0, gzip: 0 });
  console.log('');
  console.log(`| measure | value |`);
  console.log(`| --- | --- |`);
  console.log(`| rows | ${rows.toLocaleString('en-US')} |`);
  console.log(
    `| done → first rows painted (median of ${runs}) | ${median(firstRows).toFixed(1)} ms (min ${Math.min(...firstRows).toFixed(1)}, max ${Math.max(...firstRows).toFixed(1)}) |`,
  );
  console.log(`| submit → first rows painted (median) | ${median(queryTimes)} ms |`);
  console.log(
    `| wheel scroll frames (${wheel.length}) | median ${median(wheel).toFixed(1)} ms, p95 ${percentile(wheel, 95).toFixed(1)} ms, max ${Math.max(...wheel).toFixed(1)} ms |`,
  );
  if (endMs !== null) {
    console.log(`| Ctrl+End to the last row | ${endMs} ms, ${pageReads} page reads |`);
    if (heapMb !== null) console.log(`| JS heap after reaching the end | ${heapMb.toFixed(1)} MiB |`);
  }
  for (const f of files)
    console.log(`| ${f.file} | ${(f.raw / 1024).toFixed(1)} KiB, gzip ${(f.gzip / 1024).toFixed(1)} KiB |`);
  console.log(
    `| bundle JS + CSS | ${(total.raw / 1024).toFixed(1)} KiB, gzip ${(total.gzip / 1024).toFixed(1)} KiB |`,
  );
} finally {
  await browser.close();
  await server.close();
}
