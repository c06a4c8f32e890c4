import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { LOCAL_POSTGRES } from '../helpers/tenants.js';
import {
  axeViolations,
  chromiumMissing,
  launchBrowser,
  openConsole,
  signIn,
  type ConsolePage,
} from './browser.js';

/**
 * The web console in Debian's Chromium (headless, through playwright-core) against a real qrun on a
 * loopback port and the machine's PostgreSQL. One browser page walks through a session in order: the
 * tests below share it, as a user would. Every wait is on a UI state (Playwright's auto-waiting locators
 * and expect.poll), never a fixed sleep.
 */
/** README's screenshots are rewritten only when asked (`npm run screenshots`); otherwise they go to a temp dir. */
const IMAGES = process.env.QRUN_UPDATE_SCREENSHOTS
  ? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'images')
  : mkdtempSync(path.join(tmpdir(), 'qrun-console-shots-'));
const BIG_INT = '9223372036854775807';

let s: TestServer;
let browser: Browser;
let con: ConsolePage;
let page: Page;

beforeAll(async () => {
  const missing = chromiumMissing();
  if (missing) throw new Error(missing);
  s = await startTestServer();
  browser = await launchBrowser();
  con = await openConsole(browser, s);
  page = con.page;
});

afterAll(async () => {
  await browser?.close();
  await s?.close();
  if (!process.env.QRUN_UPDATE_SCREENSHOTS) rmSync(IMAGES, { recursive: true, force: true });
});

/** Replaces the editor's text and runs it with Ctrl+Enter (unless `run` is false). */
async function runSql(sql: string, run = true): Promise<void> {
  await page.getByRole('link', { name: 'Editor' }).click();
  const editor = page.getByRole('textbox', { name: 'SQL editor' });
  await editor.click();
  await page.keyboard.press('Control+A');
  // Deleted first: Chromium's editing would otherwise try to carry a style attribute over the replaced
  // selection, which the console's CSP refuses (harmless, but it would be reported as a violation).
  await page.keyboard.press('Backspace');
  await page.keyboard.insertText(sql);
  if (run) await page.keyboard.press('Control+Enter');
}

const status = () => page.getByTestId('run-status');

/** expect.poll with room for a loaded machine (its default gives up after one second). */
const poll = <T>(fn: () => T | Promise<T>, timeout = 30_000) => expect.poll(fn, { timeout, interval: 100 });

describe('web console', () => {
  it('is served at / with a strict Content-Security-Policy, and leaves the API as it was', async () => {
    const index = await fetch(`${s.url}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toContain('text/html');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const csp = index.headers.get('content-security-policy') ?? '';
    for (const directive of [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self'",
      "connect-src 'self'",
      "frame-ancestors 'none'",
      "object-src 'none'",
    ]) {
      expect(csp).toContain(directive);
    }
    expect(csp).not.toContain('unsafe-inline');
    const html = await index.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect(html).not.toContain('<style');
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const js = await fetch(s.url + asset, { headers: { 'accept-encoding': 'gzip' } });
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toContain('immutable');
    expect(js.headers.get('content-type')).toContain('javascript');
    expect(js.headers.get('content-encoding')).toBe('gzip');
    expect((await js.arrayBuffer()).byteLength).toBeGreaterThan(1000);
    const missing = await fetch(`${s.url}/assets/nope.js`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ status: 404, key: 'not_found' });

    // The API and the operations endpoints answer as without the console.
    const unknown = await s.request('GET', '/api/nope', { auth: { bearer: s.adminKey } });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ status: 404, key: 'not_found' });
    expect((await s.request('GET', '/api/me')).status).toBe(401);
    expect((await s.request('GET', '/healthz')).body).toEqual({ status: 'ok' });
    expect((await s.request('GET', '/api/openapi.json')).body.paths['/']).toBeUndefined();
  });

  it('the API reference at /api/docs opens on the query runner: run query and get query results first', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${s.url}/api/docs`);
      const sections = page.locator('.opblock-tag-section h3');
      await sections.first().waitFor();
      const tags = await sections.allTextContents();
      expect(tags[0]).toContain('Query runner');
      expect(tags.at(-1)).toContain('Operations');
      const first = page.locator('.opblock-tag-section').first().locator('.opblock-summary-description');
      const summaries = await first.allTextContents();
      expect(summaries.slice(0, 2)).toEqual(['Run a query', 'Get query results']);
    } finally {
      await page.close();
    }
  });

  it('refuses a wrong key, then signs in with the admin key and shows who you are', async () => {
    await page.getByLabel('API key').fill('qrun_u_notarealkey');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await poll(() => page.getByRole('alert').textContent()).toMatch(/key|unauthorized|credentials/i);
    await signIn(page, s.adminKey);
    await poll(() => page.getByTestId('whoami').textContent()).toContain('admin@localhost');
    expect(await page.getByTestId('role').textContent()).toBe('admin');
    // The key is in this tab's sessionStorage only.
    const stored = await page.evaluate(() => ({
      session: (globalThis as any).sessionStorage.getItem('qrun.apiKey'),
      local: (globalThis as any).localStorage.length,
      cookie: (globalThis as any).document.cookie,
    }));
    expect(stored).toEqual({ session: s.adminKey, local: 0, cookie: '' });
  });

  it('creates a PostgreSQL connection with the form generated from the connection types', async () => {
    await page.getByRole('link', { name: 'Connections' }).click();
    await page.getByRole('button', { name: 'New connection' }).click();
    const form = page.getByRole('form', { name: 'New connection' });
    await form.getByLabel('Name', { exact: true }).fill('warehouse');
    await form.getByLabel('Type', { exact: true }).selectOption('postgresql');
    await form.getByLabel('Hostname', { exact: true }).fill(LOCAL_POSTGRES.hostname);
    await form.getByLabel('Port (optional)').fill(String(LOCAL_POSTGRES.port));
    await form.getByLabel('Database', { exact: true }).fill(LOCAL_POSTGRES.database);
    await form.getByLabel('Username', { exact: true }).fill(LOCAL_POSTGRES.username);
    const password = form.getByLabel(/^Password/);
    expect(await password.getAttribute('type')).toBe('password');
    await password.fill('not-needed-with-trust-auth');
    await form.getByRole('button', { name: 'Test' }).click();
    await poll(() => form.getByRole('status').textContent()).toContain('works');
    await form.getByRole('button', { name: 'Save' }).click();
    const card = page.getByRole('listitem', { name: 'warehouse' });
    await poll(() => card.textContent()).toContain('healthy');

    // Editing shows the stored password as "unchanged", never its value.
    await card.getByRole('button', { name: 'Edit warehouse' }).click();
    const edit = page.getByRole('form', { name: 'Edit warehouse' });
    const stored = edit.getByLabel(/^Password/);
    expect(await stored.inputValue()).toBe('');
    expect(await stored.getAttribute('placeholder')).toBe('unchanged');
    await edit.getByLabel('Name', { exact: true }).fill('warehouse');
    await edit.getByRole('button', { name: 'Save' }).click(); // keeps the stored secret
    await edit.waitFor({ state: 'detached' });
    await card.getByRole('button', { name: 'Test warehouse' }).click();
    await poll(() => card.getByRole('status').textContent()).toContain('Works');
    await page.screenshot({ path: path.join(IMAGES, 'console-connections.png') });
  });

  it('runs a 25,000-row query, reads pages on demand and scrolls to its last row', async () => {
    const pageReads: string[] = [];
    const onRequest = (r: { url(): string }) => {
      if (/\/api\/queries\/[^/?]+\?page=/.test(r.url())) pageReads.push(r.url());
    };
    page.on('request', onRequest);
    try {
      await runSql('select n, md5(n::text) as hash from generate_series(1, 25000) n');
      await poll(() => status().textContent()).toMatch(/Done · 25,000 rows/);
      const grid = page.getByRole('grid');
      expect(await grid.getAttribute('aria-rowcount')).toBe('25001');
      await page.getByRole('gridcell', { name: '1', exact: true }).first().waitFor();
      // Types from `schema` in the header.
      expect(await page.getByRole('columnheader', { name: /^n\s*int4/ }).count()).toBe(1);
      // Only the first page (in the done response) and at most the next one (read ahead) so far.
      expect(pageReads.length).toBeLessThanOrEqual(1);

      await grid.focus();
      await page.keyboard.press('Control+End');
      const lastRow = page.locator('[role="row"][aria-rowindex="25001"]');
      await lastRow.getByRole('gridcell', { name: '25000', exact: true }).waitFor({ timeout: 30_000 });
      // 25 pages: every page after the first was read once, in order, to reach the end.
      expect(pageReads.length).toBeGreaterThanOrEqual(24);
      expect(new Set(pageReads).size).toBe(pageReads.length);
      await page.keyboard.press('Control+Home');
      await page
        .locator('[role="row"][aria-rowindex="2"]')
        .getByRole('gridcell', { name: '1', exact: true })
        .waitFor();
    } finally {
      page.off('request', onRequest);
    }
  });

  it('shows values exactly as stored: 64-bit integers, decimals, NULL, JSON and binary', async () => {
    await runSql(
      `select ${BIG_INT}::int8 as big, 12345678901234567890.000001::numeric as exact_decimal,` +
        ` null::text as nothing, 'NULL' as null_text,` +
        ` '{"id": 9007199254740993, "tags": ["a", "b"]}'::jsonb as doc, '\\x0102ff'::bytea as bin`,
    );
    await poll(() => status().textContent()).toMatch(/Done · 1 row/);
    await page.getByRole('gridcell', { name: BIG_INT, exact: true }).waitFor();
    await page.getByRole('gridcell', { name: '12345678901234567890.000001', exact: true }).waitFor();
    const nullCell = page.getByRole('gridcell', { name: 'NULL (no value)' });
    expect(await nullCell.getAttribute('data-null')).toBe('true');
    const nullText = page.getByRole('gridcell', { name: 'NULL', exact: true });
    expect(await nullText.getAttribute('data-null')).toBeNull();
    await page.getByRole('gridcell', { name: 'AQL/', exact: true }).waitFor();

    // A JSON value pretty-printed on expand, its big number intact.
    await page.getByRole('gridcell', { name: /"tags"/ }).click();
    await page.getByRole('button', { name: 'Expand' }).click();
    const full = await page.getByTestId('cell-full').textContent();
    expect(full).toBe('{\n  "id": 9007199254740993,\n  "tags": [\n    "a",\n    "b"\n  ]\n}');

    // Copy a cell and a row.
    await page.getByRole('gridcell', { name: BIG_INT, exact: true }).click();
    await page.getByRole('button', { name: 'Copy value' }).click();
    expect(await page.evaluate(() => (globalThis as any).navigator.clipboard.readText())).toBe(BIG_INT);
    await page.getByRole('button', { name: 'Copy row' }).click();
    const row = (await page.evaluate(() => (globalThis as any).navigator.clipboard.readText())) as string;
    expect(row).toContain(`"big":${BIG_INT}`);
    expect(row).toContain('"nothing":null');
  });

  it('cancels a running pg_sleep(60) and the statement is gone from pg_stat_activity', async () => {
    const marker = `console_cancel_${Date.now()}`;
    const sql = `select pg_sleep(60) as ${marker}`;
    const admin = new pg.Client({ ...LOCAL_POSTGRES, user: LOCAL_POSTGRES.username });
    await admin.connect();
    const active = async () =>
      (
        await admin.query(
          `select count(*)::int as n from pg_stat_activity where state = 'active' and query like $1 and pid <> pg_backend_pid()`,
          [`%${marker}%`],
        )
      ).rows[0].n as number;
    try {
      await runSql(sql);
      await poll(() => status().textContent()).toMatch(/Running/);
      await poll(active).toBe(1);
      await page.getByRole('button', { name: 'Cancel' }).click();
      await poll(() => status().textContent()).toMatch(/^Canceled/);
      await poll(active).toBe(0);
    } finally {
      await admin.end();
    }
  });

  it('draws a line chart of a time series', async () => {
    await runSql(
      `select date '2026-01-01' + n as day, n * n as orders, 100 - n as returns, 'x' || n as label` +
        ` from generate_series(1, 60) n`,
    );
    await poll(() => status().textContent()).toMatch(/Done · 60 rows/);
    await page.getByRole('tab', { name: 'Chart' }).click();
    const chart = page.getByTestId('chart');
    await poll(() => chart.getAttribute('data-points')).toBe('60');
    expect(await chart.getAttribute('data-series')).toBe('2');
    expect(await page.getByLabel('X axis').inputValue()).toBe('0'); // the date column
    expect(await page.getByLabel('Chart type').inputValue()).toBe('line');
    expect(await page.getByRole('checkbox', { name: 'orders' }).isChecked()).toBe(true);
    // The canvas has something drawn on it.
    const inked = await chart.locator('canvas').evaluate((canvas: any) => {
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
      return n;
    });
    expect(inked).toBeGreaterThan(500);
    await page.getByLabel('Chart type').selectOption('bar');
    await page.getByLabel('Chart type').selectOption('scatter');
    await poll(() => chart.getAttribute('aria-label')).toMatch(/^scatter chart of orders, returns by day/);
    await page.getByRole('tab', { name: 'Grid' }).click();
  });

  it("shows a failed query's error from the database under the editor", async () => {
    await runSql('select 1 as ok,\n  missing_column from generate_series(1, 3) g');
    const error = page.getByTestId('query-error');
    await poll(() => error.textContent()).toContain('column "missing_column" does not exist');
    expect(await error.getAttribute('role')).toBe('alert');
    expect(await status().textContent()).toMatch(/^Failed/);
  });

  it('lists your queries in the history and reopens a finished result', async () => {
    await page.getByRole('link', { name: 'History' }).click();
    const items = page.getByRole('list', { name: 'Your queries, newest first' }).getByRole('listitem');
    await poll(() => items.count()).toBeGreaterThanOrEqual(6);
    expect(await items.first().textContent()).toContain('missing_column');
    const bigQuery = items.filter({ hasText: 'generate_series(1, 25000)' });
    expect(await bigQuery.textContent()).toContain('25,000 rows');
    await bigQuery.getByRole('button', { name: /^Open result/ }).click();
    await poll(() => page.getByTestId('result-summary').textContent()).toContain('25,000 rows');
    await page.getByRole('gridcell', { name: '1', exact: true }).first().waitFor();
    expect(page.url()).toMatch(/#\/queries\/[0-9a-f-]{36}$/);
    expect(await page.getByRole('textbox', { name: 'SQL editor' }).textContent()).toContain(
      'generate_series(1, 25000)',
    );

    // Run again: the same SQL, a new query.
    await page.getByRole('link', { name: 'History' }).click();
    await items
      .filter({ hasText: BIG_INT })
      .getByRole('button', { name: /^Run again/ })
      .click();
    await page.getByRole('gridcell', { name: BIG_INT, exact: true }).waitFor({ timeout: 30_000 });
  });

  it('shows progress while a query runs, marks the error position, and downloads the result', async () => {
    // A pause of 2.5 s every 10,000 rows: while it runs, the status has stored rows and pages to show.
    await runSql(
      'select g, case when g % 10000 = 0 then pg_sleep(2.5) end as pause from generate_series(1, 30000) g',
    );
    await poll(() => status().textContent()).toMatch(/[1-9][\d,]* rows · \d+ pages? · /);
    await poll(() => status().textContent()).toMatch(/^Done/);

    await runSql('select 1 as n');
    await poll(() => status().textContent()).toMatch(/^Done · 1 row/);
    const csv = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Download CSV' }).click();
    const csvFile = await csv;
    expect(csvFile.suggestedFilename()).toMatch(/\.csv$/);
    expect(readFileSync((await csvFile.path())!, 'utf8')).toBe('n\r\n1\r\n');
    const parquet = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Download Parquet' }).click();
    const parquetFile = await parquet;
    expect(parquetFile.suggestedFilename()).toMatch(/\.parquet$/);
    // A Parquet file starts and ends with its magic bytes.
    const bytes = readFileSync((await parquetFile.path())!);
    expect([bytes.subarray(0, 4).toString(), bytes.subarray(-4).toString()]).toEqual(['PAR1', 'PAR1']);

    // PostgreSQL's position 19 is "missing_column" on the second line (1-based, in the SQL sent).
    await runSql('select 1 as ok,\n  missing_column from generate_series(1, 3) g');
    const error = page.getByTestId('query-error');
    await poll(() => error.textContent()).toContain('at line 2, column 3');
    expect(await error.textContent()).toContain('SQLSTATE 42703');
    expect(await page.getByTestId('sql-error-mark').textContent()).toBe('missing_column');
  });

  it('has no serious or critical axe-core violations, in light and dark, wide and narrow', async () => {
    const pages: [string, string][] = [
      ['editor', 'Editor'],
      ['connections', 'Connections'],
      ['history', 'History'],
    ];
    for (const [name, link] of pages) {
      await page.getByRole('link', { name: link }).click();
      await page
        .getByRole('link', { name: link, exact: true })
        .and(page.locator('[aria-current="page"]'))
        .waitFor();
      expect(await axeViolations(page), `${name} (light)`).toEqual([]);
    }
    const dark = await openConsole(browser, s, { width: 390, height: 844, colorScheme: 'dark' });
    try {
      expect(await axeViolations(dark.page), 'sign-in (dark, 390 px)').toEqual([]);
      await signIn(dark.page, s.adminKey);
      await dark.page
        .getByTestId('connection-select')
        .locator('option', { hasText: 'warehouse' })
        .waitFor({ state: 'attached' });
      await dark.page.getByRole('textbox', { name: 'SQL editor' }).click();
      await dark.page.keyboard.press('Control+A');
      await dark.page.keyboard.press('Backspace');
      await dark.page.keyboard.insertText('select n, n * 1.5 as x from generate_series(1, 100) n');
      await dark.page.getByRole('button', { name: 'Run' }).click();
      await poll(() => dark.page.getByTestId('run-status').textContent()).toMatch(/Done · 100 rows/);
      await dark.page.getByRole('gridcell', { name: '1.5', exact: true }).waitFor();
      expect(await axeViolations(dark.page), 'editor (dark, 390 px)').toEqual([]);
      // Usable at 390 px: nothing wider than the screen but the grid's own scroll area.
      const overflow = await dark.page.evaluate(
        () => (globalThis as any).document.documentElement.scrollWidth,
      );
      expect(overflow).toBeLessThanOrEqual(390);
      await dark.page.getByRole('link', { name: 'Connections' }).click();
      await dark.page.getByRole('listitem', { name: 'warehouse' }).waitFor();
      expect(await axeViolations(dark.page), 'connections (dark, 390 px)').toEqual([]);
      expect(await dark.cspViolations()).toEqual([]);
    } finally {
      await dark.context.close();
    }
  });

  it('is keyboard-usable: the grid moves with the arrow keys and columns resize from the keyboard', async () => {
    await page.getByRole('link', { name: 'Editor' }).click();
    await runSql('select n, n * 2 as doubled from generate_series(1, 50) n');
    await poll(() => status().textContent()).toMatch(/Done · 50 rows/);
    await page.getByRole('grid').focus();
    await page.keyboard.press('ArrowDown'); // selects the first cell
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowRight');
    const active = page.locator('[role="gridcell"][aria-selected="true"]');
    expect(await active.textContent()).toBe('4');
    const handle = page.getByRole('separator', { name: 'Resize column doubled' });
    const grid = page.getByRole('grid');
    expect(await grid.getAttribute('aria-activedescendant')).toBe('cell-1-1');
    const before = Number(await handle.getAttribute('aria-valuenow'));
    await handle.focus();
    await page.keyboard.press('Shift+ArrowRight');
    await poll(async () => Number(await handle.getAttribute('aria-valuenow'))).toBe(before + 50);

    // Ctrl+Enter with a selection runs only the selection.
    await runSql('select 1 as first_statement;\nselect 2 as second_statement', false);
    await page.getByRole('textbox', { name: 'SQL editor' }).press('Shift+Home');
    await page.keyboard.press('Control+Enter');
    await page.getByRole('columnheader', { name: /second_statement/ }).waitFor({ timeout: 30_000 });
    expect(await page.getByRole('columnheader', { name: /first_statement/ }).count()).toBe(0);
  });

  it('hides connection changes from role user, and signs in organization keys with Basic', async () => {
    const me = (await s.request('GET', '/api/me', { auth: { bearer: s.adminKey } })).body.data;
    const partner = { bearer: s.partnerKey };
    const user = await s.request('POST', `/api/organizations/${me.organization_id}/users`, {
      auth: partner,
      body: { email: 'analyst@localhost', role: 'user' },
    });
    const userKey = await s.request(
      'POST',
      `/api/organizations/${me.organization_id}/users/${user.body.data.id}/keys`,
      { auth: partner },
    );
    const orgKey = await s.request('POST', `/api/organizations/${me.organization_id}/keys`, {
      auth: partner,
    });

    const other = await openConsole(browser, s);
    try {
      await signIn(other.page, userKey.body.data.value);
      expect(await other.page.getByTestId('role').textContent()).toBe('user');
      await other.page.getByRole('link', { name: 'Connections' }).click();
      const card = other.page.getByRole('listitem', { name: 'warehouse' });
      await card.waitFor();
      expect(await card.getByRole('button', { name: 'Test warehouse' }).count()).toBe(1);
      expect(await card.getByRole('button', { name: /Edit|Delete/ }).count()).toBe(0);
      expect(await other.page.getByRole('button', { name: 'New connection' }).count()).toBe(0);
      expect(await other.page.getByText('Your role (user) can use and test').count()).toBe(1);

      await other.page.getByRole('button', { name: 'Sign out' }).click();
      await other.page.getByLabel('API key').waitFor();
      expect(await other.page.evaluate(() => (globalThis as any).sessionStorage.length)).toBe(0);

      const basic: string[] = [];
      other.page.on('request', (r) => {
        const auth = r.headers().authorization;
        if (auth) basic.push(auth.split(' ')[0]!);
      });
      await signIn(other.page, orgKey.body.data.value);
      expect(await other.page.getByTestId('role').textContent()).toBe('organization key');
      await other.page.getByRole('link', { name: 'Connections' }).click();
      await other.page.getByRole('button', { name: 'New connection' }).waitFor();
      expect(new Set(basic)).toEqual(new Set(['Basic']));

      // The partner key signs in, and is told that connections and queries need another key.
      await other.page.getByRole('button', { name: 'Sign out' }).click();
      await signIn(other.page, s.partnerKey);
      expect(await other.page.getByTestId('role').textContent()).toBe('partner key');
      await other.page.getByText('This is the partner key').waitFor();
    } finally {
      await other.context.close();
    }
  });

  it('saves screenshots of the editor with a result, and of the connections', async () => {
    await runSql(
      [
        'select n as id,',
        "  date '2026-11-01' + n as day,",
        "  case when n % 5 = 0 then null else 'order ' || n end as label,",
        '  (n * 17.25)::numeric(12, 2) as amount,',
        '  9223372036854775807 - n as big,',
        "  jsonb_build_object('n', n, 'even', n % 2 = 0) as doc",
        'from generate_series(1, 250000) n',
      ].join('\n'),
    );
    await poll(() => status().textContent(), 60_000).toMatch(/Done · 250,000 rows/);
    await page.getByRole('gridcell', { name: 'order 1', exact: true }).click();
    await page.evaluate(() => (globalThis as any).scrollTo(0, 0));
    await page.screenshot({ path: path.join(IMAGES, 'console-editor.png'), fullPage: true });
  });

  it('caused no Content-Security-Policy violation and no page error', async () => {
    expect(await con.cspViolations()).toEqual([]);
    expect(con.pageErrors).toEqual([]);
  });

  it('signs out and forgets the key', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    expect(await page.evaluate(() => (globalThis as any).sessionStorage.length)).toBe(0);
  });
});
