import { budgetWindowEnd, type BudgetWindow, percentage, usd } from '@tokenmeter/billing';
import type { UnpublishedAlertRow, UnpublishedCreditAlertRow } from '@tokenmeter/db';

/** The event types a budget alert produces. */
export const BUDGET_ALERT_EVENT_TYPES = ['budget.threshold_crossed', 'budget.threshold_recovered'] as const;
/** The event types a credit alert produces (docs/credits.md "Credit alerts"). */
export const CREDIT_ALERT_EVENT_TYPES = ['credits.low', 'credits.exhausted'] as const;
/** Every event type the notifier publishes (and webhook endpoints subscribe to; "*" is every type). */
export const ALERT_EVENT_TYPES = [...BUDGET_ALERT_EVENT_TYPES, ...CREDIT_ALERT_EVENT_TYPES] as const;
export type AlertEventType = (typeof BUDGET_ALERT_EVENT_TYPES)[number];
export type CreditAlertEventType = (typeof CREDIT_ALERT_EVENT_TYPES)[number];

/**
 * A budget_alerts row joined with its budget, as the dispatcher claims it (decimals as exact
 * strings): the row budget-alerts.repository.ts returns, so the payload is built from one shape.
 */
export type ClaimedAlert = UnpublishedAlertRow;

/** The Standard Webhooks payload shape: { type, timestamp, data }. The same JSON goes to Kafka. */
export interface AlertEvent {
  type: AlertEventType;
  timestamp: string;
  data: {
    alert_id: string;
    budget_id: string;
    account_id: string;
    api_key_id: string | null;
    model: string | null;
    window: BudgetWindow;
    window_start: string;
    resets_at: string | null;
    threshold_pct: string;
    direction: 'up' | 'down';
    spend_usd: string;
    limit_usd: string;
    enforce: 'hard' | 'soft';
  };
}

/**
 * The message id of an alert: `webhook-id` on every delivery, retry and resend of it, and the
 * `message-id` header of its Kafka record. Receivers deduplicate on it (delivery is at least once).
 */
export function alertMessageId(alertId: string): string {
  return `alert_${alertId}`;
}

/**
 * The event of one alert. Everything in it comes from the alert row and its budget, and
 * `timestamp` is when the alert was recorded (not when it is sent), so publishing the same alert
 * again after a crash produces the very same bytes.
 */
export function alertEvent(a: ClaimedAlert): AlertEvent {
  const resetsAt = budgetWindowEnd(a.window, a.windowStart);
  return {
    type: a.direction === 'up' ? 'budget.threshold_crossed' : 'budget.threshold_recovered',
    timestamp: a.createdAt.toISOString(),
    data: {
      alert_id: a.id,
      budget_id: a.budgetId,
      account_id: a.accountId,
      api_key_id: a.apiKeyId,
      model: a.model,
      window: a.window,
      window_start: a.windowStart.toISOString(),
      resets_at: resetsAt ? resetsAt.toISOString() : null,
      // Exact decimals, trailing zeros dropped ("80.0000" -> "80"), never exponent notation.
      threshold_pct: percentage(a.thresholdPct).toString(),
      direction: a.direction,
      spend_usd: usd(a.spendUsd).toString(),
      limit_usd: usd(a.limitUsd).toString(),
      enforce: a.enforce,
    },
  };
}

/** A credit_alerts row as the dispatcher claims it (credit-alerts.repository.ts; decimals as exact strings). */
export type ClaimedCreditAlert = UnpublishedCreditAlertRow;

/** The event of a credit alert: the same { type, timestamp, data } shape as a budget alert's. */
export interface CreditAlertEvent {
  type: CreditAlertEventType;
  timestamp: string;
  data: {
    alert_id: string;
    account_id: string;
    threshold_pct: string;
    available_usd: string;
    funded_usd: string;
    funding_grant_id: string;
  };
}

/**
 * The message id of a credit alert. Its own prefix: credit and budget alert ids come from two
 * sequences, and webhook deliveries are unique per (endpoint, message id).
 */
export function creditAlertMessageId(alertId: string): string {
  return `credit_alert_${alertId}`;
}

/** The event of one credit alert, from its row only (`timestamp` when recorded): the same bytes on every publication. */
export function creditAlertEvent(a: ClaimedCreditAlert): CreditAlertEvent {
  return {
    type: a.kind === 'low' ? 'credits.low' : 'credits.exhausted',
    timestamp: a.createdAt.toISOString(),
    data: {
      alert_id: a.id,
      account_id: a.accountId,
      threshold_pct: percentage(a.thresholdPct).toString(),
      available_usd: usd(a.availableUsd).toString(),
      funded_usd: usd(a.fundedUsd).toString(),
      funding_grant_id: a.fundingGrantId,
    },
  };
}
