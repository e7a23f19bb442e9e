import type { Pool } from 'pg';
import type { Queryable } from './transactor';

/** stripe_webhook_events: the Stripe event ids already handled, so a redelivery is applied once. */
export class StripeWebhookEventsRepository {
  constructor(private readonly pool: Pool) {}

  /**
   * Records the event id; false when it was recorded before (nothing is written then). Call it in
   * the transaction that applies the event, so the id and its effect commit together.
   */
  async recordEvent(eventId: string, type: string, q: Queryable = this.pool): Promise<boolean> {
    const { rowCount } = await q.query('INSERT INTO stripe_webhook_events (id, type) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [
      eventId,
      type,
    ]);
    return (rowCount ?? 0) > 0;
  }
}
