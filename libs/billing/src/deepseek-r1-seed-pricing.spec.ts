import { NOW, eventJson, parseOk } from './__fixtures__/usage-events';
import { seedPriceBook, tokens } from './__fixtures__/price-book';
import { costUnitsToString, priceTokenUnits, type TokenCostUnits } from './cost-units';
import { usd } from './money';
import type { PriceRates } from './pricing';
import { SEED_MODELS, SEED_PRICE_VERSIONS } from './seed-prices';
import type { TokenCounts } from './usage-shapes';

const book = seedPriceBook();
const r1 = book.versionAt('deepseek-r1', NOW)!;

function asStrings(costs: TokenCostUnits): Record<keyof TokenCostUnits, string> {
  return {
    input: costUnitsToString(costs.input),
    output: costUnitsToString(costs.output),
    cacheRead: costUnitsToString(costs.cacheRead),
    cacheWrite: costUnitsToString(costs.cacheWrite),
    total: costUnitsToString(costs.total),
  };
}

const totalUsd = (counts: TokenCounts, rates: PriceRates) => costUnitsToString(priceTokenUnits(counts, rates).total);

// Costs are exact (tokens x rate / 1e6, never rounded at ingest), so they can be asserted as strings.
describe('deepseek-r1 at the seed rates is priced exactly', () => {
  it('the seed rates are 0.5714 / 2.2857 / 0.2286 per 1M, from 2025-01-01T00:00:00Z', () => {
    expect(r1.inputPerMTok.toString()).toBe('0.5714');
    expect(r1.outputPerMTok.toString()).toBe('2.2857');
    expect(r1.cacheReadPerMTok.toString()).toBe('0.2286');
    expect(r1.cacheWritePerMTok).toBeNull();
    expect(r1.effectiveFrom.toISOString()).toBe('2025-01-01T00:00:00.000Z');
  });

  it('1M input + 1M output + 1M cache read = 0.5714 + 2.2857 + 0.2286 = 3.0857', () => {
    expect(asStrings(priceTokenUnits(tokens({ inputTokens: 1_000_000, outputTokens: 1_000_000, cacheReadTokens: 1_000_000 }), r1))).toEqual({
      input: '0.5714',
      output: '2.2857',
      cacheRead: '0.2286',
      cacheWrite: '0',
      total: '3.0857',
    });
  });

  it('1,234,567 output tokens cost exactly 2.8218497919', () => {
    // 1234567 x 2.2857 = 2821849.7919; / 1e6
    expect(totalUsd(tokens({ outputTokens: 1_234_567 }), r1)).toBe('2.8218497919');
  });

  it('a single input token costs 0.0000005714, written without exponent notation', () => {
    expect(totalUsd(tokens({ inputTokens: 1 }), r1)).toBe('0.0000005714');
  });

  it('odd counts in every bucket sum exactly', () => {
    const costs = priceTokenUnits(tokens({ inputTokens: 1_234_567, outputTokens: 7_654_321, cacheReadTokens: 7_654_321, reasoningTokens: 5_000_000 }), r1);
    expect(asStrings(costs)).toEqual({
      input: '0.7054315838',
      output: '17.4954815097',
      cacheRead: '1.7497777806',
      cacheWrite: '0',
      total: '19.9506908741',
    });
  });

  it('reasoning tokens are part of output and not charged again', () => {
    expect(totalUsd(tokens({ outputTokens: 1000, reasoningTokens: 900 }), r1)).toBe('0.0022857');
  });

  it('a DeepSeek usage event end to end: cache hits at the cache rate, misses at the input rate', () => {
    const event = parseOk(
      eventJson({ usage: { prompt_tokens: 3000, completion_tokens: 1000, prompt_cache_hit_tokens: 2000, prompt_cache_miss_tokens: 1000 } }),
    );
    const version = book.versionAt(event.model, event.occurredAt)!;
    expect(version.id).toBe(r1.id);
    // 1000 x 0.5714 + 1000 x 2.2857 + 2000 x 0.2286, / 1e6 = 0.0005714 + 0.0022857 + 0.0004572
    expect(totalUsd(event.tokens, version)).toBe('0.0033143');
  });

  it('a rates object that is given a new rate is priced at the new rate, never a remembered one', () => {
    const rates = { ...r1 };
    expect(totalUsd(tokens({ inputTokens: 1_000_000 }), rates)).toBe('0.5714');
    rates.inputPerMTok = usd('0.6');
    expect(totalUsd(tokens({ inputTokens: 1_000_000, cacheWriteTokens: 1_000_000 }), rates)).toBe('1.2');
  });

  it('every seeded price version has a seeded model, and the limits are set', () => {
    const modelIds = SEED_MODELS.map((m) => m.id);
    expect(SEED_PRICE_VERSIONS.map((v) => v.modelId).sort()).toEqual([...modelIds].sort());
    expect(book.models()).toEqual(['claude-3-5-haiku', 'claude-sonnet-4', 'deepseek-r1', 'deepseek-v3', 'gpt-4o', 'gpt-4o-mini']);
    for (const model of SEED_MODELS) {
      expect(model.contextWindow).toBeGreaterThan(0);
      expect(model.maxOutputTokens).toBeGreaterThan(0);
    }
  });
});
