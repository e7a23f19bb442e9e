import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { ApiKeysRepository } from '@tokenmeter/db';
import Stripe from 'stripe';
import { INGEST_TOKEN, insertApiKey, startApi } from '../helpers/api-app';
import { aUsageEvent } from '../factories/usage-events';
import { storedEventCount, useTestDatabase } from '../helpers/tokenmeter-db';

/**
 * Safer authentication, from the outside: the failed-authentication throttle (429 + Retry-After per
 * client address, answered before any key lookup, never touching valid keys from other addresses),
 * security headers on every kind of response, body size limits (413 in the error shape), and the
 * Swagger UI still loading under its CSP.
 *
 * Requests come from distinct loopback addresses (127.0.0.x: Linux routes all of 127/8 to lo), so
 * each case has its own client address without any proxy header.
 */
const LIMIT = 3;
const WEBHOOK_SECRET = 'whsec_auth_hardening_test';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  // Tests assert on shapes.
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
  ms: number;
}

function send(
  base: string,
  method: string,
  path: string,
  options: { from?: string; key?: string; headers?: Record<string, string>; body?: string; chunked?: boolean } = {},
): Promise<Answer> {
  const url = new URL(path, base);
  const headers: Record<string, string> = { ...(options.key ? { authorization: `Bearer ${options.key}` } : {}), ...options.headers };
  if (options.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    if (!options.chunked) headers['content-length'] = String(Buffer.byteLength(options.body));
  }
  const startedAt = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method, headers, localAddress: options.from ?? '127.0.0.1' },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // HTML or JS (Swagger UI)
          }
          resolve({ status: res.statusCode!, headers: res.headers, body, text, ms: performance.now() - startedAt });
        });
      },
    );
    // The server may answer (413) and stop reading before a large body is fully sent.
    req.on('error', reject);
    if (options.body !== undefined) {
      if (options.chunked) {
        // Several writes, no content-length: the limit must hold while reading, not only from the header.
        const step = 16 * 1024;
        for (let i = 0; i < options.body.length; i += step) req.write(options.body.slice(i, i + step));
      } else {
        req.write(options.body);
      }
    }
    req.end();
  });
}

const errorShape = (code: string) => ({ error: { code, message: expect.any(String), details: null } });

describe('auth hardening', () => {
  let app: NestExpressApplication;
  let base: string;
  const db = useTestDatabase();
  let admin: string;
  let auditor: string;
  let keyLookups: jest.SpyInstance;

  beforeAll(async () => {
    ({ app, base } = await startApi('warn', {
      AUTH_FAILURE_LIMIT: String(LIMIT),
      AUTH_FAILURE_WINDOW_SECONDS: '60',
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    }));
    // Observes (does not replace) the one query behind every key check.
    keyLookups = jest.spyOn(app.get(ApiKeysRepository), 'getApiKeyByPrefix');
  });
  afterAll(async () => {
    await app.close();
  });
  beforeEach(async () => {
    admin = await insertApiKey(db, 'admin');
    auditor = await insertApiKey(db, 'auditor');
    keyLookups.mockClear();
  });

  const UNKNOWN_KEY = 'tm_live_AAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';

  describe('failed-authentication throttle', () => {
    it(`answers 429 with Retry-After after ${LIMIT} failures from one address, without looking the key up`, async () => {
      const from = '127.0.0.2';
      const tries = [undefined, UNKNOWN_KEY, 'not-even-a-key-but-long-enough-1234'];
      for (const key of tries) {
        const res = await send(base, 'GET', '/admin/events', { from, key });
        expect(res.status).toBe(401);
        expect(res.body).toEqual(errorShape('unauthorized'));
      }
      expect(keyLookups).toHaveBeenCalledTimes(2); // the two that look like keys

      keyLookups.mockClear();
      const refused = await send(base, 'GET', '/admin/events', { from, key: UNKNOWN_KEY });
      expect(refused.status).toBe(429);
      expect(refused.body).toEqual({
        error: { code: 'too_many_requests', message: expect.stringMatching(/retry in \d+ s/), details: { retry_after_seconds: expect.any(Number) } },
      });
      const retryAfter = Number(refused.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(59);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(refused.body.error.details.retry_after_seconds).toBe(retryAfter);
      expect(keyLookups).not.toHaveBeenCalled();

      // The address is refused whatever it sends, a valid key included: otherwise a correct guess
      // would still be told apart from a wrong one while refused. Public routes stay open.
      expect((await send(base, 'GET', '/admin/events', { from, key: admin })).status).toBe(429);
      expect((await send(base, 'POST', '/v1/events', { from, key: INGEST_TOKEN, body: JSON.stringify({ events: [aUsageEvent()] }) })).status).toBe(429);
      expect((await send(base, 'GET', '/health/live', { from })).status).toBe(200);
      expect(keyLookups).not.toHaveBeenCalled();
    });

    it('never slows or refuses valid keys from other addresses, while one address is refused', async () => {
      const attacker = '127.0.0.3';
      for (let i = 0; i < LIMIT; i++) await send(base, 'GET', '/admin/audit-log', { from: attacker, key: UNKNOWN_KEY });
      expect((await send(base, 'GET', '/admin/audit-log', { from: attacker, key: UNKNOWN_KEY })).status).toBe(429);

      const times: number[] = [];
      for (let i = 0; i < 10; i++) {
        const ok = await send(base, 'GET', '/v1/prices', { from: '127.0.0.4', key: admin });
        expect(ok.status).toBe(200);
        times.push(ok.ms);
        const asAuditor = await send(base, 'GET', '/admin/audit-log', { from: '127.0.0.5', key: auditor });
        expect(asAuditor.status).toBe(200);
      }
      // No sleeps anywhere: a valid key answers at local speed (tens of ms at most on a busy box).
      expect(Math.max(...times)).toBeLessThan(1000);
      expect((await send(base, 'GET', '/admin/audit-log', { from: attacker, key: UNKNOWN_KEY })).status).toBe(429);
    });

    it('counts wrong ingest tokens too, together with bad API keys, and never counts successes', async () => {
      const from = '127.0.0.6';
      const batch = () => JSON.stringify({ events: [aUsageEvent()] });
      // Successes do not count (nor reset the count: one valid key must not buy unlimited guesses).
      for (let i = 0; i < 5; i++) expect((await send(base, 'POST', '/v1/events', { from, key: INGEST_TOKEN, body: batch() })).status).toBe(200);
      expect((await send(base, 'POST', '/v1/events', { from, key: 'wrong-token', body: batch() })).status).toBe(401);
      expect((await send(base, 'GET', '/v1/prices', { from, key: UNKNOWN_KEY })).status).toBe(401);
      expect((await send(base, 'POST', '/v1/events', { from, key: INGEST_TOKEN, body: batch() })).status).toBe(200);
      expect((await send(base, 'POST', '/v1/events', { from, body: batch() })).status).toBe(401);
      const refused = await send(base, 'POST', '/v1/events', { from, key: 'wrong-token', body: batch() });
      expect(refused.status).toBe(429);
      expect(refused.headers['retry-after']).toMatch(/^\d+$/);
      expect(refused.body).toEqual({ error: { code: 'too_many_requests', message: expect.any(String), details: { retry_after_seconds: expect.any(Number) } } });
      expect(await storedEventCount(db)).toBe(6);
      // The gateway elsewhere keeps ingesting.
      expect((await send(base, 'POST', '/v1/events', { from: '127.0.0.7', key: INGEST_TOKEN, body: batch() })).status).toBe(200);
    });

    it('HTTP ingest checks the token before it reads (up to 8 MiB of) body', async () => {
      // Not JSON at all: parsed first, it would be a 400 invalid_json.
      const notJson = '{"events": [' + 'x'.repeat(1024 * 1024);
      const wrong = await send(base, 'POST', '/v1/events', { from: '127.0.0.11', key: 'wrong-token', body: notJson });
      expect(wrong.status).toBe(401);
      expect(wrong.body).toEqual({ error: { code: 'unauthorized', message: 'missing or invalid ingest token', details: null } });
      const right = await send(base, 'POST', '/v1/events', { from: '127.0.0.11', key: INGEST_TOKEN, body: notJson });
      expect(right.status).toBe(400);
      expect(right.body.error.code).toBe('invalid_json');
    });

    it('ignores X-Forwarded-For unless API_TRUST_PROXY names the proxy', async () => {
      const from = '127.0.0.8';
      for (let i = 0; i <= LIMIT; i++) {
        const res = await send(base, 'GET', '/admin/events', { from, key: UNKNOWN_KEY, headers: { 'x-forwarded-for': `198.51.100.${i}` } });
        expect(res.status).toBe(i < LIMIT ? 401 : 429);
      }
    });
  });

  describe('behind a trusted proxy (API_TRUST_PROXY=loopback), with a 1 s window', () => {
    let proxied: NestExpressApplication;
    let proxiedBase: string;
    beforeAll(async () => {
      ({ app: proxied, base: proxiedBase } = await startApi('warn', { AUTH_FAILURE_LIMIT: '2', AUTH_FAILURE_WINDOW_SECONDS: '1', API_TRUST_PROXY: 'loopback' }));
    });
    afterAll(() => proxied.close());

    it('counts per forwarded client address and lets a refused one back after Retry-After', async () => {
      const as = (client: string) => send(proxiedBase, 'GET', '/admin/events', { key: UNKNOWN_KEY, headers: { 'x-forwarded-for': client } });
      expect((await as('198.51.100.1')).status).toBe(401);
      expect((await as('198.51.100.1')).status).toBe(401);
      const refused = await as('198.51.100.1');
      expect(refused.status).toBe(429);
      expect(refused.headers['retry-after']).toBe('1');
      expect((await as('198.51.100.2')).status).toBe(401);
      // IPv6 clients are counted per /64: another address in the same /64 is the same client.
      expect((await as('2001:db8:0:1::a')).status).toBe(401);
      expect((await as('2001:db8:0:1::b')).status).toBe(401);
      expect((await as('2001:db8:0:1::c')).status).toBe(429);
      expect((await as('2001:db8:0:2::a')).status).toBe(401);

      await new Promise((r) => setTimeout(r, 1100));
      expect((await as('198.51.100.1')).status).toBe(401);
    });
  });

  describe('security headers', () => {
    const expectSecurityHeaders = (res: Answer) => {
      const csp = String(res.headers['content-security-policy']);
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("object-src 'none'");
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
      expect(res.headers['cross-origin-opener-policy']).toBe('same-origin');
      expect(res.headers['cross-origin-resource-policy']).toBe('same-origin');
      expect(res.headers['x-powered-by']).toBeUndefined();
    };

    it('are on a 200, a 404, a 401, a 403, a 413, a 429 and a public route; API responses are not cached', async () => {
      const answers: [number, Answer][] = [
        [200, await send(base, 'GET', '/v1/prices', { key: admin })],
        [404, await send(base, 'GET', '/no/such/route', { key: admin })],
        [401, await send(base, 'GET', '/admin/events', { from: '127.0.0.9' })],
        [403, await send(base, 'POST', '/admin/accounts', { key: auditor, body: '{}' })],
        [413, await send(base, 'POST', '/admin/accounts', { key: admin, body: JSON.stringify({ pad: 'x'.repeat(70_000) }) })],
        [200, await send(base, 'GET', '/health/live')],
      ];
      for (let i = 0; i < LIMIT; i++) await send(base, 'GET', '/admin/events', { from: '127.0.0.10' });
      answers.push([429, await send(base, 'GET', '/admin/events', { from: '127.0.0.10' })]);
      for (const [status, res] of answers) {
        expect(res.status).toBe(status);
        expectSecurityHeaders(res);
        expect(String(res.headers['content-security-policy'])).toContain("style-src 'self'");
        expect(String(res.headers['content-security-policy'])).not.toContain('unsafe-inline');
        expect(res.headers['cache-control']).toBe('no-store');
      }
    });

    it('Swagger UI at /docs still loads: its CSP allows what its page uses, every asset is same-origin and typed', async () => {
      const page = await send(base, 'GET', '/docs');
      expect(page.status).toBe(200);
      expectSecurityHeaders(page);
      const csp = String(page.headers['content-security-policy']);
      // The page has inline <style> blocks and style="" attributes; nothing else is relaxed.
      expect(csp).toContain("style-src 'self' 'unsafe-inline'");
      expect(csp).toContain("script-src 'self';");
      expect(csp).toContain("img-src 'self' data:");

      // script-src 'self' forbids inline scripts: every <script> must load a same-origin file.
      const scripts = [...page.text.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
      expect(scripts.length).toBeGreaterThanOrEqual(3);
      const assets: [string, RegExp][] = [];
      for (const [, attributes, inline] of scripts) {
        const src = /src=["']([^"']+)["']/.exec(attributes)?.[1];
        expect(src).toBeDefined();
        expect(inline.trim()).toBe('');
        assets.push([src!, /javascript/]);
      }
      for (const [tag] of page.text.matchAll(/<link[^>]*>/g)) {
        const href = /href=["']([^"']+)["']/.exec(tag)?.[1];
        if (href && /rel=["']stylesheet["']/.test(tag)) assets.push([href, /text\/css/]);
      }
      expect(assets.some(([, type]) => type.source === 'text\\/css')).toBe(true);
      for (const [src, type] of assets) {
        const url = new URL(src, `${base}/docs/`);
        expect(url.origin).toBe(new URL(base).origin);
        const asset = await send(base, 'GET', url.pathname);
        expect([src, asset.status]).toEqual([src, 200]);
        // nosniff: a script or stylesheet served with the wrong type would be refused by the browser.
        expect(String(asset.headers['content-type'])).toMatch(type);
      }
      expect((await send(base, 'GET', '/openapi.json')).status).toBe(200);
    });
  });

  describe('body size limits', () => {
    it('refuses a body over 64 KiB on an ordinary route with 413 in the error shape, announced or chunked', async () => {
      const body = JSON.stringify({ id: 'acct_big', name: 'x'.repeat(64 * 1024) });
      for (const chunked of [false, true]) {
        const res = await send(base, 'POST', '/admin/accounts', { key: admin, body, chunked });
        expect(res.status).toBe(413);
        expect(res.body).toEqual({ error: { code: 'payload_too_large', message: 'request body is too large', details: null } });
      }
      // Just under the limit is read (and then judged by the route).
      const fits = await send(base, 'POST', '/admin/accounts', { key: admin, body: JSON.stringify({ id: 'acct_fits', pad: 'x'.repeat(60 * 1024) }) });
      expect(fits.status).not.toBe(413);
      expect((await db.pool.query("SELECT 1 FROM accounts WHERE id = 'acct_big'")).rowCount).toBe(0);
    });

    it('POST /v1/events takes a full batch of 1000 events with 3 KiB of metadata each (~3.6 MB), and refuses over 8 MiB', async () => {
      const events = Array.from({ length: 1000 }, () => aUsageEvent({ metadata: { note: 'm'.repeat(3 * 1024) } }));
      const body = JSON.stringify({ events });
      expect(Buffer.byteLength(body)).toBeGreaterThan(3_000_000);
      const res = await send(base, 'POST', '/v1/events', { key: INGEST_TOKEN, body });
      expect(res.status).toBe(200);
      expect(res.body.summary).toEqual({ accepted: 1000, duplicate: 0, conflict: 0, rejected: 0 });

      const tooBig = await send(base, 'POST', '/v1/events', { key: INGEST_TOKEN, body: JSON.stringify({ events, pad: 'x'.repeat(5 * 1024 * 1024) }) });
      expect(tooBig.status).toBe(413);
      expect(tooBig.body).toEqual(errorShape('payload_too_large'));
      expect(await storedEventCount(db)).toBe(1000);
    });

    it('POST /webhooks/stripe takes a signed event above 64 KiB and still verifies it over the exact bytes', async () => {
      const signer = new Stripe('sk_test_signer');
      const event = { id: 'evt_big_webhook', object: 'event', type: 'customer.updated', data: { object: { id: 'cus_1', metadata: { pad: 'y'.repeat(200 * 1024) } } } };
      // Whitespace that a re-serialised body would lose: the signature covers these exact bytes.
      const payload = JSON.stringify(event, null, 2);
      const signed = await send(base, 'POST', '/webhooks/stripe', {
        body: payload,
        headers: { 'stripe-signature': signer.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET }) },
      });
      expect(signed.status).toBe(200);
      expect(signed.body).toMatchObject({ received: true });
      const forged = await send(base, 'POST', '/webhooks/stripe', {
        body: payload,
        headers: { 'stripe-signature': signer.webhooks.generateTestHeaderString({ payload, secret: 'whsec_wrong' }) },
      });
      expect(forged.status).toBe(400);
      expect(forged.body.error.code).toBe('invalid_signature');
    });
  });
});
