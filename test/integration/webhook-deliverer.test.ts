import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { createLogger } from '@tokenmeter/config';
import { type Database, pgTransaction, WebhooksRepository } from '@tokenmeter/db';
import { newWebhookSecret, WebhookDeliverer } from '@tokenmeter/limits';
import { resetAlertTables, startReceiver, type Receiver } from '../helpers/alerts';
import { waitFor } from '../helpers/kafka';
import { freePort } from '../helpers/processes';
import { openTestDatabase } from '../helpers/tokenmeter-db';

jest.setTimeout(60_000);

const log = createLogger('test', 'silent');
const BODY = JSON.stringify({ type: 'budget.threshold_crossed', timestamp: '2026-12-01T10:00:00.000Z', data: { alert_id: '7', spend_usd: '80.5' } });

/**
 * Webhook delivery over real HTTP (node:http receivers on 127.0.0.1) and real Postgres: retries
 * with back-off, the attempt log, Standard Webhooks signatures checked with the official
 * library's Webhook.verify, rotation, a receiver that is down, resend, timeouts, the concurrency cap.
 */
describe('WebhookDeliverer', () => {
  let db: Database;
  let repo: WebhooksRepository;
  const receivers: Receiver[] = [];
  const deliverers: WebhookDeliverer[] = [];

  const deliverer = (options: { retryScheduleMs?: number[]; timeoutMs?: number; concurrency?: number } = {}) => {
    const d = new WebhookDeliverer(
      repo,
      { concurrency: options.concurrency ?? 4, timeoutMs: options.timeoutMs ?? 2000, retryScheduleMs: options.retryScheduleMs ?? [50, 50], pollIntervalMs: 25 },
      log,
    );
    deliverers.push(d);
    d.start();
    return d;
  };

  const receiver = async (options: Parameters<typeof startReceiver>[0] = {}) => {
    const r = await startReceiver(options);
    receivers.push(r);
    return r;
  };

  const endpoint = async (url: string, id = 'wh_1') => repo.createEndpoint({ id, url, events: ['*'], secret: newWebhookSecret() });

  const enqueue = (messageId = 'alert_7', body = BODY) =>
    pgTransaction(db.pool, async (q) => ({ result: await repo.enqueueDeliveries([{ messageId, eventType: 'budget.threshold_crossed', body }], q), commit: true }));

  const delivery = async (messageId = 'alert_7') => (await db.pool.query('SELECT * FROM webhook_deliveries WHERE message_id = $1', [messageId])).rows[0];
  const attempts = async (deliveryId: string) =>
    (await db.pool.query('SELECT status, error, duration_ms FROM webhook_delivery_attempts WHERE delivery_id = $1 ORDER BY id', [deliveryId])).rows;

  beforeAll(() => {
    db = openTestDatabase();
    repo = new WebhooksRepository(db.pool);
  });
  afterEach(async () => {
    await Promise.all(deliverers.splice(0).map((d) => d.stop()));
    await Promise.all(receivers.splice(0).map((r) => r.close()));
  });
  afterAll(async () => {
    await db.close();
  });
  beforeEach(async () => {
    await resetAlertTables(db);
  });

  it('a receiver failing twice (500) then succeeding gets the message once successfully, signed, with 3 attempts logged', async () => {
    const r = await receiver({ answer: (n) => (n < 2 ? 500 : 200) });
    const e = await endpoint(r.url);
    expect(await enqueue()).toBe(1);
    deliverer({ retryScheduleMs: [100, 100, 100] });

    const done = await waitFor('delivered', async () => ((await delivery()).status === 'delivered' ? delivery() : undefined), 20_000, 25);
    expect(r.requests.map((q) => q.answeredStatus)).toEqual([500, 500, 200]);
    expect(r.requests.filter((q) => q.answeredStatus < 300)).toHaveLength(1);
    // Same webhook-id on every attempt; the body is exactly what was queued.
    expect(new Set(r.requests.map((q) => q.headers['webhook-id']))).toEqual(new Set(['alert_7']));
    for (const q of r.requests) expect(q.body).toBe(BODY);
    // Back-off: each retry came at least ~80% of 100 ms after the previous attempt.
    expect(r.requests[1].at - r.requests[0].at).toBeGreaterThanOrEqual(75);
    expect(r.requests[2].at - r.requests[1].at).toBeGreaterThanOrEqual(75);

    const ok = r.requests[2];
    expect(ok.headers['content-type']).toBe('application/json');
    expect(ok.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(Math.abs(Number(ok.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(30);
    expect(new Webhook(e.secret).verify(ok.body, ok.headers as Record<string, string>)).toEqual(JSON.parse(BODY));
    // Another secret, or a changed body, does not verify.
    expect(() => new Webhook(newWebhookSecret()).verify(ok.body, ok.headers as Record<string, string>)).toThrow(WebhookVerificationError);
    expect(() => new Webhook(e.secret).verify(ok.body.replace('80.5', '80.6'), ok.headers as Record<string, string>)).toThrow(WebhookVerificationError);

    expect(done).toMatchObject({ status: 'delivered', attempts: 3, last_status: 200, last_error: null, next_attempt_at: null });
    expect(done.delivered_at).toBeInstanceOf(Date);
    const log = await attempts(done.id);
    expect(log.map((a) => [a.status, a.error])).toEqual([
      [500, 'HTTP 500'],
      [500, 'HTTP 500'],
      [200, null],
    ]);
    for (const a of log) expect(a.duration_ms).toBeGreaterThanOrEqual(0);
  });

  it('during a rotation both the new and the previous secret verify; after the overlap only the new one', async () => {
    const r = await receiver();
    const e = await endpoint(r.url);
    const newSecret = newWebhookSecret();
    await repo.rotateSecret(e.id, newSecret, 24);
    await enqueue('alert_1');
    deliverer();
    await waitFor('delivered', async () => (await delivery('alert_1')).status === 'delivered', 20_000, 25);

    const req = r.requests[0];
    const signatures = String(req.headers['webhook-signature']).split(' ');
    expect(signatures).toHaveLength(2);
    expect(new Webhook(newSecret).verify(req.body, req.headers as Record<string, string>)).toEqual(JSON.parse(BODY));
    expect(new Webhook(e.secret).verify(req.body, req.headers as Record<string, string>)).toEqual(JSON.parse(BODY));

    // An overlap of 0 hours: the previous secret has expired at once.
    const newest = newWebhookSecret();
    await repo.rotateSecret(e.id, newest, 0);
    await enqueue('alert_2');
    await waitFor('delivered', async () => (await delivery('alert_2')).status === 'delivered', 20_000, 25);
    const later = r.requests[1];
    expect(String(later.headers['webhook-signature']).split(' ')).toHaveLength(1);
    expect(new Webhook(newest).verify(later.body, later.headers as Record<string, string>)).toEqual(JSON.parse(BODY));
    expect(() => new Webhook(newSecret).verify(later.body, later.headers as Record<string, string>)).toThrow(WebhookVerificationError);
  });

  it('a receiver that is down ends in failed after the schedule, and a resend delivers it with the same webhook-id', async () => {
    const port = await freePort();
    const e = await endpoint(`http://127.0.0.1:${port}/hook`);
    await enqueue();
    deliverer({ retryScheduleMs: [50, 50] });

    const failed = await waitFor('failed', async () => ((await delivery()).status === 'failed' ? delivery() : undefined), 20_000, 25);
    expect(failed).toMatchObject({ attempts: 3, last_status: null, next_attempt_at: null, delivered_at: null });
    expect(failed.last_error).toMatch(/ECONNREFUSED/);
    const log = await attempts(failed.id);
    expect(log).toHaveLength(3);
    for (const a of log) expect(a).toMatchObject({ status: null, error: expect.stringMatching(/ECONNREFUSED/) });
    // Given up: nothing more is sent.
    await new Promise((r) => setTimeout(r, 300));
    expect(await attempts(failed.id)).toHaveLength(3);

    const r = await receiver({ port });
    const resent = await repo.resendDelivery(failed.id);
    expect(resent).toMatchObject({ status: 'pending', attempts: 0, messageId: 'alert_7' });
    await waitFor('delivered', async () => (await delivery()).status === 'delivered', 20_000, 25);
    expect(r.requests).toHaveLength(1);
    expect(r.requests[0].headers['webhook-id']).toBe('alert_7');
    expect(new Webhook(e.secret).verify(r.requests[0].body, r.requests[0].headers as Record<string, string>)).toEqual(JSON.parse(BODY));
    expect((await attempts(failed.id)).map((a) => a.status)).toEqual([null, null, null, 200]);
  });

  it('a receiver that never answers is a timed-out attempt', async () => {
    const r = await receiver({ hang: true });
    await endpoint(r.url);
    await enqueue();
    deliverer({ timeoutMs: 300, retryScheduleMs: [] });
    const failed = await waitFor('failed', async () => ((await delivery()).status === 'failed' ? delivery() : undefined), 20_000, 25);
    const [attempt] = await attempts(failed.id);
    expect(attempt).toMatchObject({ status: null, error: 'timed out after 300 ms' });
    expect(attempt.duration_ms).toBeGreaterThanOrEqual(290);
    expect(attempt.duration_ms).toBeLessThan(2000);
  });

  it('a delivery queued for an endpoint deleted meanwhile is given up, not sent', async () => {
    const r = await receiver();
    await endpoint(r.url);
    await enqueue();
    // As if the delete committed after the dispatcher's enqueue read the endpoint (deleteEndpoint itself fails pending ones).
    await db.pool.query("UPDATE webhook_endpoints SET deleted_at = now() WHERE id = 'wh_1'");
    deliverer();
    const failed = await waitFor('failed', async () => ((await delivery()).status === 'failed' ? delivery() : undefined), 20_000, 25);
    expect(failed).toMatchObject({ last_error: 'endpoint deleted', attempts: 0 });
    expect(r.requests).toHaveLength(0);
    expect(await attempts(failed.id)).toEqual([]);
  });

  it('keeps at most `concurrency` requests in flight', async () => {
    const r = await receiver({ delayMs: 150 });
    await endpoint(r.url);
    for (let i = 0; i < 12; i++) await enqueue(`alert_${i}`);
    deliverer({ concurrency: 3 });
    await waitFor('all delivered', async () => (await db.pool.query("SELECT count(*)::int AS n FROM webhook_deliveries WHERE status = 'delivered'")).rows[0].n === 12, 20_000, 25);
    expect(r.requests).toHaveLength(12);
    expect(r.maxConcurrent()).toBe(3);
  });

  it('two deliverers at once send each delivery once', async () => {
    const r = await receiver({ delayMs: 20 });
    await endpoint(r.url);
    for (let i = 0; i < 40; i++) await enqueue(`alert_${i}`);
    deliverer({ concurrency: 4 });
    deliverer({ concurrency: 4 });
    await waitFor('all delivered', async () => (await db.pool.query("SELECT count(*)::int AS n FROM webhook_deliveries WHERE status = 'delivered'")).rows[0].n === 40, 20_000, 25);
    expect(r.requests).toHaveLength(40);
    expect(new Set(r.requests.map((q) => q.headers['webhook-id'])).size).toBe(40);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM webhook_delivery_attempts')).rows[0].n).toBe(40);
  });
});
