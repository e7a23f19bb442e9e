/**
 * Screenshots of the dashboard's main pages for docs/screenshots/, from a running Tokenmeter with
 * the demo's data (npm start, then npm run demo):
 *
 *   npm run docs:screenshots -- --key <admin key> [--base http://127.0.0.1:3000] [--account acct_northwind]
 *
 * Drives Debian's Chromium like the browser tests (test/helpers/browser.ts).
 */
import { join } from 'node:path';
import { openBrowser, signIn } from '../test/helpers/browser';

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? process.argv[i + 1] : fallback;
  if (!value) throw new Error(`--${name} is required`);
  return value;
}

async function main(): Promise<void> {
  const base = arg('base', 'http://127.0.0.1:3000');
  const key = arg('key');
  const account = arg('account', 'acct_northwind');
  const out = join(__dirname, '..', 'docs', 'screenshots');
  const browser = await openBrowser();
  try {
    const page = await browser.newPage(base);
    await page.setViewportSize({ width: 1280, height: 900 });
    await signIn(page, base, key);
    // The demo publishes the four weeks before now: show those, by day.
    const hour = 3_600_000;
    const to = new Date(Math.floor(Date.now() / hour) * hour + hour).toISOString();
    const from = new Date(Date.parse(to) - 28 * 24 * hour).toISOString();
    const range = `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
    const shots: [string, string][] = [
      ['overview', `/app?account_id=${account}`],
      ['usage', `/app/usage?account_id=${account}&${range}&granularity=day&group_by=model`],
      ['requests', `/app/requests?account_id=${account}`],
      ['admin-accounts', `/app/admin?${range}`],
      ['admin-rejected', '/app/admin/rejected'],
      ['admin-prices', '/app/admin/prices'],
    ];
    for (const [name, path] of shots) {
      await page.goto(`${base}${path}`);
      // The top of each page, as a person first sees it (full pages are long tables).
      await page.screenshot({ path: join(out, `${name}.png`) });
      process.stdout.write(`[screenshots] ${name}: ${path}\n`);
    }
    await page.goto(`${base}/app/requests?account_id=${account}`);
    const receipt = await page.locator('main table tbody a[href^="/app/requests/"]').first().getAttribute('href', { timeout: 5000 }).catch(() => null);
    if (receipt) {
      await page.goto(`${base}${receipt}`);
      await page.screenshot({ path: join(out, 'receipt.png') });
      process.stdout.write(`[screenshots] receipt: ${receipt}\n`);
    }
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
