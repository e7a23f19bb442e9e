import { usd } from '../money';
import { PriceBook, type PriceVersion } from '../pricing';
import { SEED_PRICE_VERSIONS, priceVersionFromSeed } from '../seed-prices';

export function seedVersions(): PriceVersion[] {
  return SEED_PRICE_VERSIONS.map((seed, i) => priceVersionFromSeed(seed, String(i + 1)));
}

export function seedPriceBook(): PriceBook {
  return new PriceBook(seedVersions());
}

export function version(
  id: string,
  modelId: string,
  effectiveFrom: string,
  rates: { input: string; output: string; cacheRead: string; cacheWrite?: string | null },
): PriceVersion {
  return {
    id,
    modelId,
    effectiveFrom: new Date(effectiveFrom),
    inputPerMTok: usd(rates.input),
    outputPerMTok: usd(rates.output),
    cacheReadPerMTok: usd(rates.cacheRead),
    cacheWritePerMTok: rates.cacheWrite == null ? null : usd(rates.cacheWrite),
  };
}

export const tokens = (counts: Partial<Record<'inputTokens' | 'outputTokens' | 'cacheReadTokens' | 'cacheWriteTokens' | 'reasoningTokens', number>>) => ({
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  ...counts,
});
