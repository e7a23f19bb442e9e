import { withUsage } from './__fixtures__/usage-events';
import type { ParseResult } from './usage-event';

function rejection(result: ParseResult): { code: string; reason: string; eventId: string | null } {
  if (result.ok) throw new Error('expected a rejection');
  return result.rejection;
}

// A usage object whose numbers cannot all be true is refused whole, with a reason that names the
// field, rather than billed on a guess.
describe('usage invariant violations are rejected naming the field', () => {
  it('OpenAI cached_tokens above prompt_tokens', () => {
    expect(rejection(withUsage({ prompt_tokens: 100, completion_tokens: 1, prompt_tokens_details: { cached_tokens: 120 } }))).toEqual({
      code: 'invariant',
      reason: 'usage.prompt_tokens_details.cached_tokens (120) must not exceed usage.prompt_tokens (100)',
      eventId: 'evt_01J0000000000000000000',
    });
  });

  it('OpenAI cached_tokens equal to prompt_tokens is fine (input 0)', () => {
    const result = withUsage({ prompt_tokens: 100, completion_tokens: 1, prompt_tokens_details: { cached_tokens: 100 } });
    expect(result.ok && result.event.tokens.inputTokens).toBe(0);
  });

  it('OpenAI reasoning_tokens above completion_tokens', () => {
    expect(rejection(withUsage({ prompt_tokens: 10, completion_tokens: 5, completion_tokens_details: { reasoning_tokens: 6 } })).reason).toBe(
      'usage.completion_tokens_details.reasoning_tokens (6) must not exceed usage.completion_tokens (5)',
    );
  });

  it('DeepSeek hit + miss different from prompt_tokens', () => {
    expect(
      rejection(withUsage({ prompt_tokens: 100, completion_tokens: 1, prompt_cache_hit_tokens: 60, prompt_cache_miss_tokens: 30 })),
    ).toEqual({
      code: 'invariant',
      reason: 'usage.prompt_cache_hit_tokens + usage.prompt_cache_miss_tokens (90) must equal usage.prompt_tokens (100)',
      eventId: 'evt_01J0000000000000000000',
    });
    expect(
      rejection(withUsage({ prompt_tokens: 100, completion_tokens: 1, prompt_cache_hit_tokens: 60, prompt_cache_miss_tokens: 41 })).reason,
    ).toBe('usage.prompt_cache_hit_tokens + usage.prompt_cache_miss_tokens (101) must equal usage.prompt_tokens (100)');
  });

  it('DeepSeek reasoning_tokens above completion_tokens', () => {
    const usage = {
      prompt_tokens: 10,
      completion_tokens: 5,
      prompt_cache_hit_tokens: 0,
      prompt_cache_miss_tokens: 10,
      completion_tokens_details: { reasoning_tokens: 9 },
    };
    expect(rejection(withUsage(usage)).reason).toBe(
      'usage.completion_tokens_details.reasoning_tokens (9) must not exceed usage.completion_tokens (5)',
    );
  });

  it('canonical reasoning_tokens above output_tokens', () => {
    expect(rejection(withUsage({ input_tokens: 1, output_tokens: 5, reasoning_tokens: 6 })).reason).toBe(
      'usage.reasoning_tokens (6) must not exceed usage.output_tokens (5)',
    );
  });

  it.each([
    [{ input_tokens: -1, output_tokens: 0 }, 'usage.input_tokens must be an integer 0 <= n < 1000000000 (got -1)'],
    [{ input_tokens: 1.5, output_tokens: 0 }, 'usage.input_tokens must be an integer 0 <= n < 1000000000 (got 1.5)'],
    [{ input_tokens: 1, output_tokens: 1e9 }, 'usage.output_tokens must be an integer 0 <= n < 1000000000 (got 1000000000)'],
    [{ input_tokens: 1, output_tokens: 1, cache_write_tokens: -3 }, 'usage.cache_write_tokens must be an integer 0 <= n < 1000000000 (got -3)'],
    [{ prompt_tokens: 1, completion_tokens: 2, prompt_tokens_details: { cached_tokens: 0.5 } }, 'usage.prompt_tokens_details.cached_tokens must be an integer 0 <= n < 1000000000 (got 0.5)'],
    [{ prompt_tokens: 1, completion_tokens: 1, prompt_cache_hit_tokens: -1, prompt_cache_miss_tokens: 2 }, 'usage.prompt_cache_hit_tokens must be an integer 0 <= n < 1000000000 (got -1)'],
    [{ input_tokens: 1, output_tokens: 1, cache_read_input_tokens: 2e9 }, 'usage.cache_read_input_tokens must be an integer 0 <= n < 1000000000 (got 2000000000)'],
  ])('a count that is negative, fractional or >= 1e9: %j', (usage, reason) => {
    expect(rejection(withUsage(usage))).toEqual({ code: 'invariant', reason, eventId: 'evt_01J0000000000000000000' });
  });

  it('999,999,999 is the largest count accepted', () => {
    const result = withUsage({ input_tokens: 999_999_999, output_tokens: 0 });
    expect(result.ok && result.event.tokens.inputTokens).toBe(999_999_999);
  });

  it.each([
    [{ input_tokens: '100', output_tokens: 1 }, 'usage.input_tokens must be a number (got string)'],
    [{ prompt_tokens: 100 }, 'usage.completion_tokens is required'],
    [{ output_tokens: 1 }, 'usage.input_tokens is required'],
    [{ prompt_tokens: 10, completion_tokens: 1, prompt_cache_hit_tokens: 10 }, 'usage.prompt_cache_miss_tokens is required'],
    [{ prompt_tokens: 10, completion_tokens: 1, prompt_tokens_details: [] }, 'usage.prompt_tokens_details must be an object (got array)'],
    [{ input_tokens: 1, output_tokens: 1, cache_read_input_tokens: true }, 'usage.cache_read_input_tokens must be a number (got boolean)'],
  ])('a count of the wrong type or missing is a schema rejection: %j', (usage, reason) => {
    expect(rejection(withUsage(usage))).toEqual({ code: 'schema', reason, eventId: 'evt_01J0000000000000000000' });
  });

  it.each([
    [{ prompt_tokens: 10, completion_tokens: 1, input_tokens: 10 }, 'ambiguous usage shape: usage.prompt_tokens (OpenAI/DeepSeek) and usage.input_tokens (Anthropic/canonical) cannot appear together'],
    [{ input_tokens: 10, output_tokens: 1, completion_tokens: 1 }, 'ambiguous usage shape: usage.input_tokens (Anthropic/canonical) and usage.completion_tokens (OpenAI/DeepSeek) cannot appear together'],
    [{ input_tokens: 10, output_tokens: 1, cache_read_input_tokens: 5, cache_read_tokens: 5 }, 'ambiguous usage shape: usage.cache_read_input_tokens (Anthropic) and usage.cache_read_tokens (canonical) cannot appear together'],
    [{ prompt_tokens: 10, completion_tokens: 1, cache_creation_input_tokens: 5 }, 'ambiguous usage shape: usage.prompt_tokens (OpenAI/DeepSeek) and usage.cache_creation_input_tokens (Anthropic) cannot appear together'],
  ])('keys from two shapes at once are ambiguous: %j', (usage, reason) => {
    expect(rejection(withUsage(usage))).toEqual({ code: 'schema', reason, eventId: 'evt_01J0000000000000000000' });
  });

  it('OpenAI Responses API usage is refused: its input_tokens include cached tokens', () => {
    const usage = { input_tokens: 100, output_tokens: 10, input_tokens_details: { cached_tokens: 80 }, output_tokens_details: { reasoning_tokens: 0 } };
    const result = rejection(withUsage(usage));
    expect(result.code).toBe('schema');
    expect(result.reason).toMatch(/^unsupported usage shape: usage\.input_tokens_details is OpenAI Responses API usage/);
  });
});
