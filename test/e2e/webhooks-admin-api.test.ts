import { Webhook } from 'standardwebhooks';
import { createLogger } from '@tokenmeter/config';
import { BudgetAlertsRepository, CreditAlertsRepository, WebhooksRepository } from '@tokenmeter/db';
import { AlertsDispatcher, WebhookDeliverer } from '@tokenmeter/limits';
import { insertAlert, insertBudget, resetAlertTables, startReceiver, type Receiver } from '../helpers/alerts';
import { insertApiKey, useAdminApi } from '../helpers/api-app';
import { createTopics, readTopic, testKafka, uniqueName, waitFor } from '../helpers/kafka';
import { TEST_DATABASE_URL } from '../helpers/tokenmeter-db';

jest.setTimeout(90_000);

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The webhook and alert admin routes, and an alert going all the way to a receiver through them. */
describe('admin API: webhooks, deliveries, resend, alerts', () => {
  const api = useAdminApi({ seedPrices: false });
  const { call } = api;
  let receiver: Receiver | undefined;

  beforeEach(() => resetAlertTables(api.db));
  afterEach(async () => {
    await receiver?.close();
    receiver = undefined;
  });

  it('creates an endpoint (secret shown once), lists it without secrets, rotates and deletes it, all audited', async () => {
    const created = await call('POST', '/admin/webhooks', { body: { url: 'https://hooks.example.com/tokenmeter', events: ['budget.threshold_crossed', 'budget.threshold_crossed'] } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ url: 'https://hooks.example.com/tokenmeter', events: ['budget.threshold_crossed'], previous_secret_expires_at: null });
    expect(created.body.id).toMatch(/^wh_[0-9a-f]{20}$/);
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const { id, secret } = created.body;

    const listed = await call('GET', '/admin/webhooks');
    expect(listed.status).toBe(200);
    expect(listed.body.data).toEqual([{ id, url: created.body.url, events: ['budget.threshold_crossed'], created_at: created.body.created_at, previous_secret_expires_at: null }]);
    expect(JSON.stringify(listed.body)).not.toContain(secret.slice(6));

    const rotated = await call('POST', `/admin/webhooks/${id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(secret);
    const overlapMs = Date.parse(rotated.body.previous_secret_expires_at) - Date.now();
    expect(overlapMs).toBeGreaterThan(23.9 * 3_600_000);
    expect(overlapMs).toBeLessThan(24.1 * 3_600_000);
    expect((await call('GET', '/admin/webhooks')).body.data[0].previous_secret_expires_at).toBe(rotated.body.previous_secret_expires_at);
    const row = (await api.db.pool.query('SELECT secret, previous_secret FROM webhook_endpoints WHERE id = $1', [id])).rows[0];
    expect(row).toEqual({ secret: rotated.body.secret, previous_secret: secret });

    const deleted = await call('DELETE', `/admin/webhooks/${id}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body.id).toBe(id);
    expect((await call('GET', '/admin/webhooks')).body.data).toEqual([]);
    expect((await call('DELETE', `/admin/webhooks/${id}`)).status).toBe(404);
    expect((await call('POST', `/admin/webhooks/${id}/rotate-secret`)).status).toBe(404);

    const audit = (await api.db.pool.query("SELECT action, target_id, before, after FROM audit_log WHERE target_type = 'webhook_endpoint' ORDER BY id")).rows;
    expect(audit.map((a) => a.action)).toEqual(['webhook.create', 'webhook.rotate_secret', 'webhook.delete']);
    for (const a of audit) expect(a.target_id).toBe(id);
    // Secrets never reach the audit log.
    const trail = JSON.stringify(audit);
    expect(trail).not.toContain(secret.slice(6, 30));
    expect(trail).not.toContain(rotated.body.secret.slice(6, 30));
  });

  it.each([
    ['an ftp URL', { url: 'ftp://example.com/x', events: ['*'] }, 'url'],
    ['a javascript: URL', { url: 'javascript:alert(1)', events: ['*'] }, 'url'],
    ['not a URL', { url: 'not a url', events: ['*'] }, 'url'],
    ['a URL over 2048 characters', { url: `https://example.com/${'a'.repeat(2100)}`, events: ['*'] }, 'url'],
    ['no event types', { url: 'https://example.com/', events: [] }, 'events'],
    ['an unknown event type', { url: 'https://example.com/', events: ['budget.exploded'] }, 'events.0'],
    ['events as a string', { url: 'https://example.com/', events: '*' }, 'events'],
    ['events missing', { url: 'https://example.com/' }, 'events'],
    ['a secret of its own', { url: 'https://example.com/', events: ['*'], secret: 'whsec_mine' }, 'body'],
  ])('refuses %s with a 400 naming the field', async (_what, body, field) => {
    const res = await call('POST', '/admin/webhooks', { body });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'validation_failed', details: { field } });
  });

  it('answers 4xx, never 5xx, for unknown or malformed ids', async () => {
    expect((await call('GET', '/admin/webhooks/wh_nope/deliveries')).status).toBe(404);
    expect((await call('GET', '/admin/webhook-deliveries/123')).status).toBe(404);
    expect((await call('POST', '/admin/webhook-deliveries/123/resend')).status).toBe(404);
    expect((await call('GET', '/admin/webhook-deliveries/99999999999999999999')).status).toBe(400);
    expect((await call('GET', '/admin/webhook-deliveries/9223372036854775808')).status).toBe(400);
    expect((await call('GET', '/admin/webhook-deliveries/9223372036854775807')).status).toBe(404);
    expect((await call('GET', '/admin/webhook-deliveries/abc')).status).toBe(400);
    expect((await call('GET', '/admin/webhooks/x/deliveries?status=lost')).status).toBe(400);
    expect((await call('GET', '/admin/alerts?cursor=%%%')).status).toBe(400);
  });

  it('auditors read, only admins write', async () => {
    const auditor = await insertApiKey(api.db, 'auditor');
    const account = await insertApiKey(api.db, 'account', 'acct_a');
    expect((await call('GET', '/admin/webhooks', { key: auditor })).status).toBe(200);
    expect((await call('GET', '/admin/alerts', { key: auditor })).status).toBe(200);
    expect((await call('POST', '/admin/webhooks', { key: auditor, body: { url: 'https://example.com/', events: ['*'] } })).status).toBe(403);
    expect((await call('GET', '/admin/webhooks', { key: account })).status).toBe(403);
  });

  it('an alert goes out to Kafka and to the receiver; admins read the delivery log, the alert, and resend it with the same id', async () => {
    receiver = await startReceiver({ answer: (n) => (n === 0 ? 503 : 200) });
    const created = await call('POST', '/admin/webhooks', { body: { url: receiver.url, events: ['*'] } });
    const { id: endpointId, secret } = created.body;
    const other = await call('POST', '/admin/webhooks', { body: { url: receiver.url, events: ['budget.threshold_recovered'] } });

    await insertBudget(api.db, { id: 'bud_1', accountId: 'acct_a', limitUsd: '50', window: 'day' });
    const alertId = await insertAlert(api.db, { budgetId: 'bud_1', accountId: 'acct_a', windowStart: new Date('2026-12-01T00:00:00Z'), thresholdPct: '100', spendUsd: '50.000001', limitUsd: '50' });
    await insertBudget(api.db, { id: 'bud_2', accountId: 'acct_b', limitUsd: '10', window: 'month' });
    await insertAlert(api.db, { budgetId: 'bud_2', accountId: 'acct_b', windowStart: new Date('2026-12-01T00:00:00Z'), thresholdPct: '50', spendUsd: '5', limitUsd: '10' });

    const pending = await call('GET', `/admin/alerts?account_id=acct_a`);
    expect(pending.body.data).toEqual([
      {
        id: alertId,
        message_id: `alert_${alertId}`,
        budget_id: 'bud_1',
        account_id: 'acct_a',
        window_start: '2026-12-01T00:00:00.000Z',
        threshold_pct: '100',
        direction: 'up',
        spend_usd: '50.000001',
        limit_usd: '50',
        created_at: expect.any(String),
        published_at: null,
      },
    ]);

    const kafka = testKafka('webhooks-admin-e2e');
    const topic = uniqueName('tokenmeter.alerts.e2e');
    await createTopics(kafka, [topic], 1);
    const producer = kafka.producer();
    await producer.connect();
    const log = createLogger('test', 'silent');
    const webhooks = new WebhooksRepository(api.db.pool);
    const deliverer = new WebhookDeliverer(webhooks, { concurrency: 2, timeoutMs: 2000, retryScheduleMs: [50, 50], pollIntervalMs: 25 }, log);
    const dispatcher = new AlertsDispatcher(
      api.db.pool,
      new BudgetAlertsRepository(api.db.pool),
      new CreditAlertsRepository(api.db.pool),
      webhooks,
      producer,
      { databaseUrl: TEST_DATABASE_URL, topic, batchSize: 10, pollIntervalMs: 100, onDeliveriesEnqueued: () => deliverer.wake() },
      log,
    );
    deliverer.start();
    await dispatcher.start();
    try {
      const delivered = await waitFor(
        'two deliveries delivered',
        async () => {
          const page = await call('GET', `/admin/webhooks/${endpointId}/deliveries?status=delivered`);
          return page.body.data.length === 2 ? page.body.data : undefined;
        },
        20_000,
        50,
      );
      expect((await readTopic(kafka, topic, 2)).map((r) => r.headers['message-id']).sort()).toEqual(delivered.map((d: Json) => d.message_id).sort());
      // The other endpoint only wants recoveries: nothing for it.
      expect((await call('GET', `/admin/webhooks/${other.body.id}/deliveries`)).body.data).toEqual([]);

      const mine = delivered.find((d: Json) => d.message_id === `alert_${alertId}`);
      const detail = await call('GET', `/admin/webhook-deliveries/${mine.id}`);
      expect(detail.status).toBe(200);
      expect(detail.body).toMatchObject({ id: mine.id, endpoint_id: endpointId, status: 'delivered', event_type: 'budget.threshold_crossed' });
      expect(JSON.parse(detail.body.body)).toMatchObject({ type: 'budget.threshold_crossed', data: { alert_id: alertId, spend_usd: '50.000001', limit_usd: '50' } });
      const statuses = detail.body.attempt_log.map((a: Json) => a.status);
      expect(statuses[statuses.length - 1]).toBe(200);

      expect((await call('GET', '/admin/alerts?account_id=acct_a')).body.data[0].published_at).not.toBeNull();
      // Paged: one per page, newest first, then the end.
      const page1 = await call('GET', '/admin/alerts?limit=1');
      expect(page1.body.data).toHaveLength(1);
      const page2 = await call('GET', `/admin/alerts?limit=1&cursor=${page1.body.next_cursor}`);
      expect(page2.body.data).toHaveLength(1);
      expect(Number(page2.body.data[0].id)).toBeLessThan(Number(page1.body.data[0].id));
      const page3 = await call('GET', `/admin/alerts?limit=1&cursor=${page2.body.next_cursor}`);
      expect(page3.body).toEqual({ data: [], next_cursor: null });

      const before = receiver.requests.length;
      const resent = await call('POST', `/admin/webhook-deliveries/${mine.id}/resend`);
      expect(resent.status).toBe(200);
      expect(resent.body).toMatchObject({ id: mine.id, status: 'pending', attempts: 0, message_id: `alert_${alertId}` });
      await waitFor('resent', async () => (await call('GET', `/admin/webhook-deliveries/${mine.id}`)).body.status === 'delivered', 20_000, 50);
      const again = receiver.requests.slice(before).filter((q) => q.headers['webhook-id'] === `alert_${alertId}`);
      expect(again).toHaveLength(1);
      expect(new Webhook(secret).verify(again[0].body, again[0].headers as Record<string, string>)).toMatchObject({ data: { alert_id: alertId } });
      const audit = (await api.db.pool.query("SELECT action, target_id FROM audit_log WHERE action = 'webhook_delivery.resend'")).rows;
      expect(audit).toEqual([{ action: 'webhook_delivery.resend', target_id: mine.id }]);

      // A deleted endpoint's log stays readable; its deliveries cannot be resent.
      expect((await call('DELETE', `/admin/webhooks/${endpointId}`)).status).toBe(200);
      expect((await call('GET', `/admin/webhooks/${endpointId}/deliveries`)).body.data).toHaveLength(2);
      const refused = await call('POST', `/admin/webhook-deliveries/${mine.id}/resend`);
      expect(refused.status).toBe(409);
      expect(refused.body.error.code).toBe('conflict');
    } finally {
      await dispatcher.stop();
      await deliverer.stop();
      await producer.disconnect();
    }
  });
});
