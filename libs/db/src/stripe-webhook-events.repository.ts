import type { Pool } from 'pg';
import { prismaFor, type Queryable } from './transactor';

/** stripe_webhook_events (Prisma): the Stripe event ids already handled, so a redelivery is applied once. */
export class StripeWebhookEventsRepository {
  constructor(private readonly pool: Pool) {}

  /**
   * Records the event id; false when it was recorded before (nothing is written then). Call it in
   * the transaction that applies the event, so the id and its effect commit together.
   */
  async recordEvent(eventId: string, type: string, q: Queryable = this.pool): Promise<boolean> {
    // skipDuplicates is ON CONFLICT DO NOTHING: a redelivery does not abort the transaction.
    const { count } = await prismaFor(this.pool, q).stripeWebhookEvent.createMany({ data: [{ id: eventId, type }], skipDuplicates: true });
    return count > 0;
  }
}
