import type { TokenCostUnits } from '@tokenmeter/billing';

/** What names one usage event and when it happened: the same on the way in and on the way out. */
export interface UsageEventIdentity {
  eventId: string;
  accountId: string;
  /** '' when the gateway sent no API key. */
  apiKeyId: string;
  model: string;
  requestId: string | null;
  occurredAt: Date;
}

/** An event ready to store: validated, normalised, priced (or explicitly unpriced). */
export interface NewUsageEventRow extends UsageEventIdentity {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  /** JSON text of the usage object as received. */
  usageRawJson: string;
  usageFormat: string;
  metadataJson: string | null;
  payloadHash: string;
  /** null: no price in force at occurredAt; all cost fields are then null too. */
  priceVersionId: string | null;
  /** The account override that changed the list price, if any. */
  priceOverrideId: string | null;
  /** Exact costs in 10^-22 USD (libs/billing cost-units.ts); null exactly when priceVersionId is null. */
  costs: TokenCostUnits | null;
  flags: string[];
  source: 'kafka' | 'http';
}

export interface RejectedEventRow {
  source: 'kafka' | 'http';
  topic: string | null;
  partition: number | null;
  offset: string | null;
  messageKey: string | null;
  eventId: string | null;
  rawPayload: string;
  reasonCode: string;
  reason: string;
}

/** How far a consumer has got on one partition, stored with the batch that got it there. */
export interface IngestProgressRow {
  topic: string;
  partition: number;
  nextOffset: string;
  maxOccurredAt: Date | null;
}

export type StoredOutcome = 'inserted' | 'duplicate' | 'conflict';
