import pLimit from 'p-limit';
import type { Logger } from '@tokenmeter/config';
import type { AttemptOutcome, LeasedDelivery, WebhooksRepository } from '@tokenmeter/db';
import { nextRetryDelayMs, signWebhook } from './webhook-signing';

export interface WebhookDelivererOptions {
  /** Requests in flight at once. */
  concurrency: number;
  /** One request's timeout. */
  timeoutMs: number;
  /** Delays before the 2nd, 3rd, ... attempt; the delivery fails after attempt scheduleMs.length + 1. */
  retryScheduleMs: readonly number[];
  /** How often due deliveries are looked for (retries come due without anyone waking us). */
  pollIntervalMs: number;
  random?: () => number;
  clock?: () => Date;
}

const LEASE_MARGIN_MS = 5000;

/** Kept short in the log: a receiver's error page is not ours to store. */
const MAX_ERROR_CHARS = 500;

/**
 * Sends due webhook deliveries. Each is leased first (next_attempt_at pushed past the request
 * timeout, committed), then POSTed outside any transaction, then its outcome is recorded, so no
 * database lock or connection is held while a slow receiver makes us wait, and a deliverer that
 * dies mid-request leaves the delivery due again once the lease runs out (the receiver may then
 * get it twice: HTTP delivery is at least once, receivers deduplicate on webhook-id).
 *
 * 2xx is delivered. Anything else (another status, a redirect, a refused connection, a timeout) is
 * a failed attempt, retried per the schedule with jitter, and after the last one the delivery is
 * failed; an admin can resend it.
 */
export class WebhookDeliverer {
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly leaseMs: number;
  private timer: NodeJS.Timeout | undefined;
  private claiming: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly webhooks: WebhooksRepository,
    private readonly options: WebhookDelivererOptions,
    private readonly log: Logger,
  ) {
    this.limit = pLimit(options.concurrency);
    // Longer than a request can take, plus room for recording its outcome. Should recording take
    // longer still, another deliverer may send it again (at least once), and the late outcome is
    // logged but cannot move the delivery any more (recordAttempt checks the lease).
    this.leaseMs = options.timeoutMs + LEASE_MARGIN_MS;
  }

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.wake(), this.options.pollIntervalMs);
    this.wake();
  }

  /** Stops claiming and waits for the requests in flight (at most one timeout) to be recorded. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.claiming;
    await Promise.all([...this.inFlight]);
  }

  /** Look for due deliveries now (new deliveries were enqueued, a request finished). */
  wake(): void {
    if (this.stopped) return;
    if (this.claiming) {
      this.again = true;
      return;
    }
    this.claiming = this.claimAndSend()
      .catch((err) => this.log.error({ err }, 'webhook claim failed; retrying on the next wake'))
      .finally(() => {
        this.claiming = undefined;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  /** Resolves when nothing is due or in flight (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.claiming || this.inFlight.size > 0) {
      await Promise.all([this.claiming, ...this.inFlight]);
    }
  }

  private async claimAndSend(): Promise<void> {
    for (;;) {
      const free = this.options.concurrency - this.inFlight.size;
      if (free <= 0 || this.stopped) return;
      const leased = await this.webhooks.leaseDueDeliveries(free, this.leaseMs);
      for (const d of leased) {
        const task = this.limit(() => this.deliver(d)).finally(() => {
          this.inFlight.delete(task);
          this.wake();
        });
        this.inFlight.add(task);
      }
      if (leased.length < free) return;
    }
  }

  /** One attempt of one delivery, recorded whatever happens. */
  async deliver(d: LeasedDelivery): Promise<void> {
    if (d.endpointDeleted) {
      await this.webhooks.giveUpDelivery(d, 'endpoint deleted').catch((err) => this.log.error({ err, deliveryId: d.id }, 'could not give up a webhook delivery'));
      return;
    }
    const outcome = await this.attempt(d);
    try {
      await this.webhooks.recordAttempt(d, outcome);
    } catch (err) {
      // The lease runs out and the delivery is tried again: at least once, never lost.
      this.log.error({ err, deliveryId: d.id }, 'could not record a webhook attempt; it will be retried after its lease');
      return;
    }
    const level = outcome.delivered ? 'debug' : 'warn';
    this.log[level](
      { deliveryId: d.id, messageId: d.messageId, endpointId: d.endpointId, status: outcome.status, error: outcome.error, retryInMs: outcome.retryInMs },
      outcome.delivered ? 'webhook delivered' : outcome.retryInMs === null ? 'webhook delivery failed for good' : 'webhook attempt failed',
    );
  }

  private async attempt(d: LeasedDelivery): Promise<AttemptOutcome> {
    const started = performance.now();
    const attemptsMade = d.attempts + 1;
    const failed = (status: number | null, error: string | null): AttemptOutcome => ({
      status,
      error,
      durationMs: performance.now() - started,
      delivered: false,
      retryInMs: nextRetryDelayMs(this.options.retryScheduleMs, attemptsMade, this.options.random),
    });
    try {
      // A new timestamp, so a new signature, on every attempt; the id stays the message's.
      const headers = signWebhook(d.messageId, (this.options.clock ?? (() => new Date()))(), d.body, d.secrets);
      const res = await fetch(d.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'Tokenmeter-Webhooks/1', ...headers },
        body: d.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      // Only the status matters; drop the body without reading it.
      await res.body?.cancel().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) {
        return { status: res.status, error: null, durationMs: performance.now() - started, delivered: true, retryInMs: null };
      }
      return failed(res.status, `HTTP ${res.status}`);
    } catch (err) {
      return failed(null, errorText(err, this.options.timeoutMs));
    }
  }
}

function errorText(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `timed out after ${timeoutMs} ms`;
  const cause = e?.cause?.code ?? e?.cause?.message;
  return `${e?.message ?? String(err)}${cause ? ` (${cause})` : ''}`.slice(0, MAX_ERROR_CHARS);
}
