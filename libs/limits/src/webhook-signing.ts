import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/**
 * Standard Webhooks (https://www.standardwebhooks.com): a secret is `whsec_` + base64 of random
 * bytes; a request carries webhook-id, webhook-timestamp (Unix seconds) and webhook-signature,
 * `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed by the secret's decoded bytes. The
 * signing itself is the official `standardwebhooks` package's, so it verifies with any of the
 * official libraries by construction.
 */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** True for what newWebhookSecret mints (and what the official libraries accept as a key). */
export function isWebhookSecret(secret: string): boolean {
  return /^whsec_[A-Za-z0-9+/]{43}=$/.test(secret);
}

export interface SignedHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * The headers of one attempt. With several secrets (a rotation's new and previous one) the
 * signatures are space-separated, so a receiver holding either verifies the request.
 */
export function signWebhook(messageId: string, at: Date, body: string, secrets: readonly string[]): SignedHeaders {
  if (secrets.length === 0) throw new Error('no secret to sign with');
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((secret) => new Webhook(secret).sign(messageId, at, body)).join(' '),
  };
}

/**
 * How long to wait before the next attempt after `attemptsMade` attempts, or null when that was
 * the last one. `scheduleMs[i]` is the delay before attempt i + 2; each delay is jittered by up to
 * +-20% so that deliveries failing together (a receiver's outage) do not retry in lockstep.
 */
export function nextRetryDelayMs(scheduleMs: readonly number[], attemptsMade: number, random: () => number = Math.random): number | null {
  if (attemptsMade < 1 || attemptsMade > scheduleMs.length) return null;
  const base = scheduleMs[attemptsMade - 1];
  return Math.max(1, Math.round(base * (0.8 + 0.4 * random())));
}
