import { createHmac } from 'node:crypto';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { isWebhookSecret, newWebhookSecret, nextRetryDelayMs, signWebhook } from './webhook-signing';

const body = '{"type":"budget.threshold_crossed","data":{"spend_usd":"80.5"}}';

describe('Standard Webhooks signing', () => {
  it('mints whsec_ secrets of 32 random bytes', () => {
    const secret = newWebhookSecret();
    expect(isWebhookSecret(secret)).toBe(true);
    expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(32);
    expect(newWebhookSecret()).not.toBe(secret);
  });

  it('signs v1,<base64 HMAC-SHA256 of "id.timestamp.body"> keyed by the decoded secret', () => {
    const secret = newWebhookSecret();
    const at = new Date();
    const h = signWebhook('alert_1', at, body, [secret]);
    const seconds = Math.floor(at.getTime() / 1000);
    expect(h['webhook-id']).toBe('alert_1');
    expect(h['webhook-timestamp']).toBe(String(seconds));
    // The spec's construction by hand, as a receiver without the library would check it.
    const expected = createHmac('sha256', Buffer.from(secret.slice(6), 'base64')).update(`alert_1.${seconds}.${body}`).digest('base64');
    expect(h['webhook-signature']).toBe(`v1,${expected}`);
    expect(new Webhook(secret).verify(body, { ...h })).toEqual(JSON.parse(body));
  });

  it('with two secrets (a rotation) carries both signatures, and either secret verifies', () => {
    const [current, previous, stranger] = [newWebhookSecret(), newWebhookSecret(), newWebhookSecret()];
    const h = signWebhook('alert_2', new Date(), body, [current, previous]);
    expect(h['webhook-signature'].split(' ')).toHaveLength(2);
    expect(new Webhook(current).verify(body, { ...h })).toBeTruthy();
    expect(new Webhook(previous).verify(body, { ...h })).toBeTruthy();
    expect(() => new Webhook(stranger).verify(body, { ...h })).toThrow(WebhookVerificationError);
    expect(() => new Webhook(current).verify(`${body} `, { ...h })).toThrow(WebhookVerificationError);
  });
});

describe('the retry schedule', () => {
  const schedule = [5000, 30_000, 120_000];

  it('waits schedule[n-1] after the n-th attempt, jittered within +-20%, and gives up after the last', () => {
    expect(nextRetryDelayMs(schedule, 1, () => 0.5)).toBe(5000);
    expect(nextRetryDelayMs(schedule, 2, () => 0)).toBe(24_000);
    expect(nextRetryDelayMs(schedule, 3, () => 0.999999)).toBe(144_000);
    expect(nextRetryDelayMs(schedule, 4)).toBeNull();
    expect(nextRetryDelayMs([], 1)).toBeNull();
    for (let i = 0; i < 1000; i++) {
      const d = nextRetryDelayMs(schedule, 2)!;
      expect(d).toBeGreaterThanOrEqual(24_000);
      expect(d).toBeLessThanOrEqual(36_000);
    }
  });
});
