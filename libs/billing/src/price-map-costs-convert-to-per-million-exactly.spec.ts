import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ValidationError } from './errors';
import { parsePriceMap, perMTokFromPerToken, priceMapSubset } from './price-maps';

// A trimmed copy of LiteLLM 1.110.2's model_prices_and_context_window_backup.json: twelve entries
// cut verbatim (number text untouched) from the real file. The OpenRouter list is written in the
// shape of GET /api/v1/models (no network here to fetch a real one).
const fixture = (name: string) => readFileSync(join(__dirname, '__fixtures__', name), 'utf8');
const LITELLM = fixture('litellm-model-prices.json');
const OPENROUTER = fixture('openrouter-models.json');

describe('per-token costs become per-million-token rates exactly, from the JSON text', () => {
  it.each([
    ['5.714e-7', '0.5714'],
    ['5.714E-07', '0.5714'],
    ['1e-6', '1'],
    ['3.5e-7', '0.35'],
    ['0.000002', '2'],
    ['0.0000005714', '0.5714'],
    ['2.19e-06', '2.19'],
    ['1e-16', '0.0000000001'],
    ['0', '0'],
    ['0.0', '0'],
    ['1.5e-5', '15'],
    ['9999.9999999999999999', '9999999999.9999999999'],
  ])('%s per token is %s per million', (perToken, perMTok) => {
    expect(perMTokFromPerToken(perToken, 'f')).toBe(perMTok);
  });

  it('no binary double on the way: 2.19e-06 is 2.19, where JSON.parse and * 1e6 give 2.1900000000000004', () => {
    expect(JSON.parse('2.19e-06') * 1e6).toBe(2.1900000000000004);
    expect(perMTokFromPerToken('2.19e-06', 'f')).toBe('2.19');
  });

  it('a number the map wrote with float noise is refused, never rounded into a price', () => {
    expect(() => perMTokFromPerToken('3.0000000000000004e-7', 'input_cost_per_token')).toThrow(
      'input_cost_per_token: 3.0000000000000004e-7 per token is 0.30000000000000004 per million tokens: more than the price book\'s 10 decimals',
    );
  });

  it.each(['-1', '-0', '0x10', 'Infinity', 'NaN', '1e', '.5', '1e-99999', ' 1', '1,5'])('refuses %j', (text) => {
    expect(() => perMTokFromPerToken(text, 'f')).toThrow(ValidationError);
  });

  it('refuses a rate over the column (10 integer digits per million)', () => {
    expect(() => perMTokFromPerToken('10000', 'f')).toThrow('more than the price book can hold');
  });
});

describe('a LiteLLM map (entries cut from the real file)', () => {
  const map = parsePriceMap(LITELLM, 'litellm');

  it('reads every model entry but the sample_spec documentation entry', () => {
    expect(map.entries.has('sample_spec')).toBe(false);
    expect(map.entries.size).toBe(11);
  });

  it('deepseek-reasoner: 2.8e-07 / 4.2e-07 / cache read 2.8e-08 per token, max_input_tokens as context window', () => {
    expect(map.entries.get('deepseek-reasoner')).toEqual({
      key: 'deepseek-reasoner',
      provider: 'deepseek',
      rates: { inputPerMTok: '0.28', outputPerMTok: '0.42', cacheReadPerMTok: '0.028', cacheWritePerMTok: null },
      problem: null,
      contextWindow: 131072,
      maxOutputTokens: 65536,
      notes: [],
    });
  });

  it('claude-sonnet-4-5 has a cache write price; gpt-4o-mini a cache read of 7.5e-08', () => {
    expect(map.entries.get('claude-sonnet-4-5')?.rates).toEqual({ inputPerMTok: '3', outputPerMTok: '15', cacheReadPerMTok: '0.3', cacheWritePerMTok: '3.75' });
    expect(map.entries.get('gpt-4o-mini')?.rates?.cacheReadPerMTok).toBe('0.075');
  });

  it('float noise in the file (1.6000000000000001e-06) makes the entry not importable, never a rounded price', () => {
    const e = map.entries.get('novita/deepseek/deepseek-v4-pro')!;
    expect(e.rates).toBeNull();
    expect(e.problem).toBe('input_cost_per_token: 1.6000000000000001e-06 per token is 1.6000000000000001 per million tokens: more than the price book\'s 10 decimals');
    expect(map.entries.get('bigmodel/glm-5.3')?.problem).toContain('1.1428571428571428 per million tokens');
  });

  it('an image model (priced per image) and an entry with no prices are not importable, and say why', () => {
    expect(map.entries.get('1024-x-1024/50-steps/bedrock/amazon.nova-canvas-v1:0')?.problem).toBe(
      'input_cost_per_token: is missing (the price book prices tokens: input and output rates are required)',
    );
    expect(map.entries.get('github_copilot/text-embedding-3-small')).toMatchObject({ rates: null, problem: expect.stringMatching(/^input_cost_per_token: is missing/), contextWindow: 8191 });
  });

  it('what the book cannot hold is noted: tiers above 200k tokens, a separate reasoning price, no cache price', () => {
    expect(map.entries.get('gemini-2.5-pro')?.notes).toEqual([expect.stringMatching(/^tiered prices \(cache_creation_input_token_cost_above_200k_tokens, .*input_cost_per_token_above_200k_tokens.*\) are not imported/)]);
    expect(map.entries.get('gemini-2.5-pro')?.rates).toEqual({ inputPerMTok: '1.25', outputPerMTok: '10', cacheReadPerMTok: '0.125', cacheWritePerMTok: null });
    expect(map.entries.get('dashscope/qwen-turbo')?.notes).toContain('output_cost_per_reasoning_token (0.5 per million) is not imported: reasoning tokens are billed at the output rate');
    expect(map.entries.get('dashscope/qwen-turbo')?.notes).toContain('no cache_read_input_token_cost: cache reads at the input rate');
    expect(map.entries.get('dashscope/qwen-turbo')?.rates?.cacheReadPerMTok).toBe('0.05');
  });

  it('a subset keeps the chosen entries with their numbers written as the file had them', () => {
    const subset = priceMapSubset(map, ['novita/deepseek/deepseek-v4-pro', 'deepseek-reasoner', 'not-there']);
    expect(subset).toContain('"input_cost_per_token":1.6000000000000001e-06');
    const again = parsePriceMap(subset, 'litellm');
    expect([...again.entries.keys()]).toEqual(['novita/deepseek/deepseek-v4-pro', 'deepseek-reasoner']);
    expect(again.entries.get('deepseek-reasoner')).toEqual(map.entries.get('deepseek-reasoner'));
  });
});

describe('an OpenRouter models list', () => {
  const map = parsePriceMap(OPENROUTER, 'openrouter');

  it('reads decimal strings per token: "0.0000005714" is 0.5714 per million; context_length and max_completion_tokens come along', () => {
    expect(map.entries.get('deepseek/deepseek-r1')).toEqual({
      key: 'deepseek/deepseek-r1',
      provider: 'deepseek',
      rates: { inputPerMTok: '0.5714', outputPerMTok: '2.2857', cacheReadPerMTok: '0.2286', cacheWritePerMTok: null },
      problem: null,
      contextWindow: 163840,
      maxOutputTokens: 65536,
      notes: [],
    });
    expect(map.entries.get('anthropic/claude-sonnet-4')?.rates?.cacheWritePerMTok).toBe('3.75');
  });

  it('a router with variable pricing ("-1") is not importable; a reasoning price above completion is noted', () => {
    expect(map.entries.get('openrouter/auto')?.problem).toBe('pricing.prompt: -1 is not a non-negative decimal');
    expect(map.entries.get('openai/o3-mini')?.notes).toEqual(['pricing.internal_reasoning (8.8 per million) is not imported: reasoning tokens are billed at the output rate']);
  });

  it('a subset is a models list again', () => {
    const again = parsePriceMap(priceMapSubset(map, ['openai/gpt-4o']), 'openrouter');
    expect([...again.entries.values()]).toEqual([map.entries.get('openai/gpt-4o')]);
  });
});

describe('documents that are not a price map are refused as a whole', () => {
  it.each([
    ['not JSON', '{"a": 1,', 'litellm', /^content: is not valid JSON/],
    ['a list for LiteLLM', '[1, 2]', 'litellm', /^content: a LiteLLM price map is a JSON object/],
    ['no data array', '{"models": []}', 'openrouter', /^content: an OpenRouter models list is a JSON object with a "data" array/],
    ['a model without id', '{"data": [{"pricing": {}}]}', 'openrouter', /^content: data\[0\] is not a model with a string "id"/],
    ['the same id twice', '{"data": [{"id": "a/b"}, {"id": "a/b"}]}', 'openrouter', /^content: data\[1\]: model a\/b appears twice/],
    ['the same key twice with different values', '{"m": {"input_cost_per_token": 1e-6}, "m": {}}', 'litellm', /^content: is not valid JSON: Duplicate key 'm'/],
  ] as const)('%s', (_name, text, format, message) => {
    expect(() => parsePriceMap(text, format)).toThrow(message);
  });
});
