import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { TestServer } from '../helpers/server.js';

/**
 * Debian's Chromium, driven by playwright-core (which downloads no browser of its own). `.ci/run` installs
 * the `chromium` package when it is missing. Playwright gives every launch a fresh, empty profile.
 */
export const CHROMIUM = process.env.QRUN_TEST_CHROMIUM ?? '/usr/bin/chromium';

/** The flags a closed network needs: no background connections, no QUIC, no first-run or sync. */
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

export function chromiumMissing(): string | null {
  return existsSync(CHROMIUM)
    ? null
    : `${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)`;
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
}

export interface ConsolePage {
  context: BrowserContext;
  page: Page;
  /** Content-Security-Policy violations the page reported (must stay empty). */
  cspViolations(): Promise<string[]>;
  /** Uncaught errors in the page. */
  pageErrors: string[];
}

/** A new browser context (own sessionStorage) on the console of `server`. */
export async function openConsole(
  browser: Browser,
  server: TestServer,
  options: { width?: number; height?: number; colorScheme?: 'light' | 'dark' } = {},
): Promise<ConsolePage> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: options.height ?? 800 },
    colorScheme: options.colorScheme ?? 'light',
    permissions: ['clipboard-read', 'clipboard-write'],
  });
  await context.addInitScript(() => {
    const w = globalThis as any;
    w.__cspViolations = [];
    w.addEventListener('securitypolicyviolation', (e: any) =>
      w.__cspViolations.push(
        `${e.violatedDirective} ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}:${e.columnNumber} ${e.sample}`,
      ),
    );
  });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(server.url + '/');
  return {
    context,
    page,
    pageErrors,
    cspViolations: () => page.evaluate(() => (globalThis as any).__cspViolations as string[]),
  };
}

export async function signIn(page: Page, key: string): Promise<void> {
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

const require = createRequire(import.meta.url);

/** axe-core injected into the page; violations of serious or critical impact. */
export async function axeViolations(page: Page): Promise<{ id: string; impact: string; nodes: string[] }[]> {
  const source = readFileSync(path.join(path.dirname(require.resolve('axe-core')), 'axe.min.js'), 'utf8');
  await page.evaluate(source);
  const results = (await page.evaluate(() =>
    (globalThis as any).axe.run((globalThis as any).document, {
      resultTypes: ['violations'],
    }),
  )) as { violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] };
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
}
