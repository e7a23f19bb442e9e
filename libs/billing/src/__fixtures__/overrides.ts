import { percentage, usd } from '../money';
import type { DiscountOverride, RateCardOverride } from '../overrides';

export function rateCard(
  id: string,
  accountId: string,
  modelId: string,
  from: string,
  rates: { input: string; output: string; cacheRead: string; cacheWrite?: string | null },
  to: string | null = null,
): RateCardOverride {
  return {
    kind: 'rate_card',
    id,
    accountId,
    modelId,
    effectiveFrom: new Date(from),
    effectiveTo: to === null ? null : new Date(to),
    inputPerMTok: usd(rates.input),
    outputPerMTok: usd(rates.output),
    cacheReadPerMTok: usd(rates.cacheRead),
    cacheWritePerMTok: rates.cacheWrite == null ? null : usd(rates.cacheWrite),
  };
}

export function discount(
  id: string,
  accountId: string,
  modelId: string | null,
  percent: string,
  from: string,
  to: string | null = null,
): DiscountOverride {
  return {
    kind: 'discount',
    id,
    accountId,
    modelId,
    discountPercent: percentage(percent),
    effectiveFrom: new Date(from),
    effectiveTo: to === null ? null : new Date(to),
  };
}
