import { NOW, eventJson, parseOk } from './__fixtures__/usage-events';
import { detectUsageFormat } from './usage-shapes';

// Each provider shape becomes disjoint TokenCounts: input never includes cache reads or writes,
// so no token is charged twice.
describe('each usage shape normalises to disjoint token counts', () => {
  it('canonical: counts are taken as sent, optional ones default to 0', () => {
    const event = parseOk(
      eventJson({ usage: { input_tokens: 1000, output_tokens: 500, cache_read_tokens: 300, cache_write_tokens: 40, reasoning_tokens: 200 } }),
    );
    expect(event.usageFormat).toBe('canonical');
    expect(event.tokens).toEqual({ inputTokens: 1000, outputTokens: 500, cacheReadTokens: 300, cacheWriteTokens: 40, reasoningTokens: 200 });

    const minimal = parseOk(eventJson({ usage: { input_tokens: 7, output_tokens: 3 } }));
    expect(minimal.usageFormat).toBe('canonical');
    expect(minimal.tokens).toEqual({ inputTokens: 7, outputTokens: 3, cacheReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 });
  });

  it('OpenAI: cached tokens are moved out of input into cache reads', () => {
    const usage = {
      prompt_tokens: 2006,
      completion_tokens: 300,
      total_tokens: 2306,
      prompt_tokens_details: { cached_tokens: 1920, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 128, audio_tokens: 0, accepted_prediction_tokens: 0 },
    };
    const event = parseOk(eventJson({ model: 'gpt-4o', usage }));
    expect(event.usageFormat).toBe('openai');
    expect(event.tokens).toEqual({ inputTokens: 86, outputTokens: 300, cacheReadTokens: 1920, cacheWriteTokens: 0, reasoningTokens: 128 });
    // Unknown keys (total_tokens, audio_tokens, ...) are kept verbatim.
    expect(event.usageRaw).toEqual(usage);
  });

  it('OpenAI without details (or with null details) has no cache reads', () => {
    expect(parseOk(eventJson({ usage: { prompt_tokens: 50, completion_tokens: 5 } })).tokens).toEqual({
      inputTokens: 50, outputTokens: 5, cacheReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0,
    });
    const nullDetails = { prompt_tokens: 50, completion_tokens: 5, prompt_tokens_details: null, completion_tokens_details: { reasoning_tokens: null } };
    expect(parseOk(eventJson({ usage: nullDetails })).tokens).toEqual({
      inputTokens: 50, outputTokens: 5, cacheReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0,
    });
  });

  it('Anthropic: input_tokens already excludes cache reads and writes, so nothing is subtracted', () => {
    const usage = {
      input_tokens: 12,
      output_tokens: 450,
      cache_read_input_tokens: 9000,
      cache_creation_input_tokens: 1500,
      cache_creation: { ephemeral_5m_input_tokens: 1500, ephemeral_1h_input_tokens: 0 },
      service_tier: 'standard',
    };
    const event = parseOk(eventJson({ model: 'claude-sonnet-4', usage }));
    expect(event.usageFormat).toBe('anthropic');
    expect(event.tokens).toEqual({ inputTokens: 12, outputTokens: 450, cacheReadTokens: 9000, cacheWriteTokens: 1500, reasoningTokens: 0 });
    expect(event.usageRaw).toEqual(usage);
  });

  it('Anthropic with only one cache field defaults the other to 0', () => {
    const event = parseOk(eventJson({ usage: { input_tokens: 5, output_tokens: 6, cache_creation_input_tokens: 700 } }));
    expect(event.usageFormat).toBe('anthropic');
    expect(event.tokens).toEqual({ inputTokens: 5, outputTokens: 6, cacheReadTokens: 0, cacheWriteTokens: 700, reasoningTokens: 0 });
  });

  it('DeepSeek: input is the cache miss count, cache reads the hit count', () => {
    const usage = {
      prompt_tokens: 1000,
      completion_tokens: 2500,
      total_tokens: 3500,
      prompt_cache_hit_tokens: 640,
      prompt_cache_miss_tokens: 360,
      completion_tokens_details: { reasoning_tokens: 2100 },
    };
    const event = parseOk(eventJson({ usage }));
    expect(event.usageFormat).toBe('deepseek');
    expect(event.tokens).toEqual({ inputTokens: 360, outputTokens: 2500, cacheReadTokens: 640, cacheWriteTokens: 0, reasoningTokens: 2100 });
  });

  it('detection follows the documented rule', () => {
    expect(detectUsageFormat({ prompt_tokens: 1, completion_tokens: 1 })).toBe('openai');
    expect(detectUsageFormat({ prompt_tokens: 1, completion_tokens: 1, prompt_cache_hit_tokens: 1 })).toBe('deepseek');
    expect(detectUsageFormat({ prompt_tokens: 1, completion_tokens: 1, prompt_cache_miss_tokens: 1 })).toBe('deepseek');
    expect(detectUsageFormat({ input_tokens: 1, output_tokens: 1, cache_read_input_tokens: 0 })).toBe('anthropic');
    expect(detectUsageFormat({ input_tokens: 1, output_tokens: 1 })).toBe('canonical');
    expect(detectUsageFormat({})).toBe('canonical');
  });

  it('the rest of the event is carried over typed', () => {
    const event = parseOk(eventJson({ api_key_id: null, request_id: undefined, metadata: null }));
    expect(event).toMatchObject({
      eventId: 'evt_01J0000000000000000000',
      accountId: 'acct_acme',
      apiKeyId: null,
      model: 'deepseek-r1',
      requestId: null,
      metadata: null,
    });
    expect(event.occurredAt.toISOString()).toBe('2025-06-01T11:59:30.250Z');
    expect(event.payloadHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('accepts a string, a Buffer and an already-parsed HTTP body alike', () => {
    const json = eventJson();
    const fromString = parseOk(json, NOW);
    expect(parseOk(Buffer.from(json, 'utf8'), NOW)).toEqual(fromString);
    expect(parseOk(JSON.parse(json), NOW)).toEqual(fromString);
  });

  it('an HTTP body is copied, so later changes by the caller cannot alter the event', () => {
    const body = JSON.parse(eventJson({ metadata: { team: 'search' } }));
    const event = parseOk(body);
    body.usage.input_tokens = 999;
    body.metadata.team = 'ads';
    expect(event.usageRaw).toEqual({ input_tokens: 100, output_tokens: 20 });
    expect(event.metadata).toEqual({ team: 'search' });
  });
});
