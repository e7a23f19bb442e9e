import { eventObject } from './__fixtures__/usage-events';
import {
  anthropicUsageSchema,
  canonicalUsageSchema,
  deepSeekUsageSchema,
  envelopeSchema,
  isAnthropicUsageCertainlyValid,
  isCanonicalUsageCertainlyValid,
  isDeepSeekUsageCertainlyValid,
  isEnvelopeCertainlyValid,
  isOpenAiUsageCertainlyValid,
  openAiUsageSchema,
} from './usage-schemas';
import type { ZodTypeAny } from 'zod';

// The hand-rolled checks skip zod on the hot path. If one ever accepted something its zod schema
// rejects, a bad event would be stored. Every value here is tried against both.
const ODD_VALUES: unknown[] = [
  undefined, null, '', ' ', 'a b', 'ok_id-1.2:3', 'x'.repeat(128), 'x'.repeat(129), 'r'.repeat(256), 'r'.repeat(257),
  0, -1, 1.5, 1e9, NaN, Infinity, true, false, [], [1], {}, { cached_tokens: 1 }, { reasoning_tokens: 'x' },
  { cached_tokens: null }, { reasoning_tokens: NaN }, new Date(0),
];

function variants(base: Record<string, unknown>, keys: string[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [base];
  for (const key of keys) {
    for (const value of ODD_VALUES) {
      const copy = { ...base };
      if (value === undefined) delete copy[key];
      else copy[key] = value;
      out.push(copy);
    }
  }
  out.push({ ...base, unexpected: 1 });
  return out;
}

function expectAgreement(schema: ZodTypeAny, isCertainlyValid: (v: unknown) => boolean, values: unknown[]): void {
  let fastAccepted = 0;
  for (const value of values) {
    if (isCertainlyValid(value)) {
      fastAccepted++;
      if (!schema.safeParse(value).success) throw new Error(`fast path accepted what zod rejects: ${JSON.stringify(value)}`);
    }
  }
  // And it must actually take the fast path for valid input, or it is not a fast path.
  expect(fastAccepted).toBeGreaterThan(0);
}

describe('the hand-rolled fast path never accepts what zod rejects', () => {
  it('envelope', () => {
    const keys = ['event_id', 'occurred_at', 'account_id', 'api_key_id', 'model', 'request_id', 'usage', 'metadata'];
    const values: unknown[] = [
      ...variants(eventObject(), keys),
      ...variants(eventObject({ api_key_id: null, request_id: null, metadata: null }), keys),
      null,
      [],
      'event',
      42,
    ];
    expectAgreement(envelopeSchema, isEnvelopeCertainlyValid, values);
    expect(isEnvelopeCertainlyValid(eventObject())).toBe(true);
  });

  it('OpenAI usage', () => {
    const base = { prompt_tokens: 10, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 2 }, completion_tokens_details: { reasoning_tokens: 1 } };
    expectAgreement(openAiUsageSchema, isOpenAiUsageCertainlyValid, variants(base, Object.keys(base)));
    expect(isOpenAiUsageCertainlyValid(base)).toBe(true);
  });

  it('DeepSeek usage', () => {
    const base = {
      prompt_tokens: 10,
      completion_tokens: 5,
      prompt_cache_hit_tokens: 4,
      prompt_cache_miss_tokens: 6,
      completion_tokens_details: { reasoning_tokens: 1 },
    };
    expectAgreement(deepSeekUsageSchema, isDeepSeekUsageCertainlyValid, variants(base, [...Object.keys(base), 'prompt_tokens_details']));
    expect(isDeepSeekUsageCertainlyValid(base)).toBe(true);
  });

  it('Anthropic usage', () => {
    const base = { input_tokens: 10, output_tokens: 5, cache_read_input_tokens: 4, cache_creation_input_tokens: 6 };
    expectAgreement(anthropicUsageSchema, isAnthropicUsageCertainlyValid, variants(base, Object.keys(base)));
    expect(isAnthropicUsageCertainlyValid(base)).toBe(true);
  });

  it('canonical usage', () => {
    const base = { input_tokens: 10, output_tokens: 5, cache_read_tokens: 4, cache_write_tokens: 6, reasoning_tokens: 1 };
    expectAgreement(canonicalUsageSchema, isCanonicalUsageCertainlyValid, variants(base, Object.keys(base)));
    expect(isCanonicalUsageCertainlyValid(base)).toBe(true);
  });
});
