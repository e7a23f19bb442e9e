/**
 * A real Chromium for the dashboard tests: Debian's `chromium` package (installed by
 * scripts/ensure-chromium.sh, never downloaded by npm), driven by playwright-core.
 *
 *   const browser = await openBrowser();
 *   const page = await browser.newPage(base);     // fails the test on any request leaving `base`
 *   await page.goto(`${base}/app`);
 *   await browser.checkAccessibility(page, 'overview');   // axe-core: no serious/critical violations
 *   await browser.screenshot(page, 'overview');            // test-artifacts/screenshots/overview.png
 *   await browser.close();
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOTS = join(__dirname, '..', '..', 'test-artifacts', 'screenshots');

const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export interface TestBrowser {
  /** A fresh context (its own cookies) and page; every request must stay on `origin`. */
  newPage(origin: string): Promise<Page>;
  /** Requests made to anywhere but the page's origin, per page (asserted empty by the tests). */
  foreignRequests(page: Page): string[];
  /** axe-core on the page as rendered: throws listing every serious or critical violation. */
  checkAccessibility(page: Page, name: string): Promise<void>;
  screenshot(page: Page, name: string): Promise<void>;
  close(): Promise<void>;
}

export async function openBrowser(): Promise<TestBrowser> {
  // Chromium wants writable HOME/XDG dirs (crashpad refuses to start otherwise).
  const home = mkdtempSync(join(tmpdir(), 'tokenmeter-chromium-'));
  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    env: { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_CACHE_HOME: join(home, '.cache') },
  });
  const foreign = new WeakMap<Page, string[]>();
  const contexts: BrowserContext[] = [];
  mkdirSync(SCREENSHOTS, { recursive: true });
  return {
    async newPage(origin: string) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      contexts.push(context);
      const page = await context.newPage();
      const seen: string[] = [];
      foreign.set(page, seen);
      const allowed = new URL(origin).origin;
      // Anything else (a CDN, a font, a tracker) would be a leak: record it and refuse it.
      await context.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith('data:') || new URL(url).origin === allowed) return route.continue();
        seen.push(url);
        return route.abort();
      });
      return page;
    },
    foreignRequests: (page) => foreign.get(page) ?? [],
    async checkAccessibility(page, name) {
      // Evaluated through the DevTools protocol, so the page's CSP (script-src 'self') does not apply to it.
      await page.evaluate(AXE_SOURCE);
      const result = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'] })`)) as {
        violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[];
      };
      const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      if (serious.length > 0) {
        const lines = serious.map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).slice(0, 5).join(', ')}`);
        throw new Error(`accessibility violations on ${name}:\n${lines.join('\n')}`);
      }
    },
    async screenshot(page, name) {
      await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
    },
    async close() {
      for (const c of contexts) await c.close().catch(() => undefined);
      await browser.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Signs a page in through the form, as a person would. */
export async function signIn(page: Page, base: string, apiKey: string): Promise<void> {
  await page.goto(`${base}/app/sign-in`);
  await page.getByLabel('API key').fill(apiKey);
  await Promise.all([page.waitForURL(/\/app(\/|\?|$)/), page.getByRole('button', { name: 'Sign in' }).click()]);
}

/** The exact value of every <data> in an element, in document order. */
export async function dataValues(page: Page, selector: string): Promise<string[]> {
  return page.locator(`${selector} data`).evaluateAll((els) => els.map((e) => (e as HTMLDataElement).value));
}
