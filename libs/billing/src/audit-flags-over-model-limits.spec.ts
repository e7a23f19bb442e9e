import { tokens } from './__fixtures__/price-book';
import { auditFlags, type ModelLimits } from './pricing';
import { SEED_MODELS } from './seed-prices';

const limits: ModelLimits = { contextWindow: 1000, maxOutputTokens: 100 };

describe('usage a model could not have produced is flagged for audit', () => {
  it('within limits: no flags', () => {
    expect(auditFlags(tokens({ inputTokens: 600, cacheReadTokens: 200, cacheWriteTokens: 100, outputTokens: 100 }), limits)).toEqual([]);
  });

  it('the prompt side counts input, cache reads and cache writes', () => {
    // 600 + 200 + 101 + 100 = 1001 > 1000
    expect(auditFlags(tokens({ inputTokens: 600, cacheReadTokens: 200, cacheWriteTokens: 101, outputTokens: 100 }), limits)).toEqual([
      'exceeds_context_window',
    ]);
  });

  it('output above max output is flagged, and can be flagged together with the context window', () => {
    expect(auditFlags(tokens({ outputTokens: 101 }), limits)).toEqual(['exceeds_max_output']);
    expect(auditFlags(tokens({ inputTokens: 950, outputTokens: 101 }), limits)).toEqual(['exceeds_context_window', 'exceeds_max_output']);
  });

  it('reasoning tokens are already inside output and are not added again', () => {
    expect(auditFlags(tokens({ inputTokens: 900, outputTokens: 100, reasoningTokens: 100 }), limits)).toEqual([]);
  });

  it('unknown limits never flag', () => {
    const huge = tokens({ inputTokens: 999_999_999, outputTokens: 999_999_999 });
    expect(auditFlags(huge, undefined)).toEqual([]);
    expect(auditFlags(huge, { contextWindow: null, maxOutputTokens: null })).toEqual([]);
    expect(auditFlags(huge, { contextWindow: null, maxOutputTokens: 10 })).toEqual(['exceeds_max_output']);
  });

  it('deepseek-r1 seed limits: a full 128K-context request with a 64K answer is not flagged', () => {
    const r1 = SEED_MODELS.find((m) => m.id === 'deepseek-r1')!;
    expect(auditFlags(tokens({ inputTokens: 65_536, outputTokens: 65_536 }), r1)).toEqual([]);
    expect(auditFlags(tokens({ inputTokens: 65_536, outputTokens: 65_537 }), r1)).toEqual(['exceeds_context_window', 'exceeds_max_output']);
  });
});
