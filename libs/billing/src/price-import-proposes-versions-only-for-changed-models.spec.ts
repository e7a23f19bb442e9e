import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BookModel, planPriceImport } from './price-import';
import { parsePriceMap } from './price-maps';

const LITELLM = parsePriceMap(readFileSync(join(__dirname, '__fixtures__', 'litellm-model-prices.json'), 'utf8'), 'litellm');
const OPENROUTER = parsePriceMap(readFileSync(join(__dirname, '__fixtures__', 'openrouter-models.json'), 'utf8'), 'openrouter');

const JAN = new Date('2025-01-01T00:00:00Z');
const NOV = new Date('2026-11-01T00:00:00Z');

// The book as the seed has it (pg prints NUMERIC(20, 10) with all ten decimals).
const BOOK: BookModel[] = [
  {
    id: 'deepseek-r1',
    contextWindow: 131072,
    maxOutputTokens: 65536,
    latest: { effectiveFrom: JAN, inputPerMTok: '0.5714000000', outputPerMTok: '2.2857000000', cacheReadPerMTok: '0.2286000000', cacheWritePerMTok: null },
  },
  {
    id: 'gpt-4o',
    contextWindow: 128000,
    maxOutputTokens: 16384,
    latest: { effectiveFrom: JAN, inputPerMTok: '2.5000000000', outputPerMTok: '10.0000000000', cacheReadPerMTok: '1.2500000000', cacheWritePerMTok: null },
  },
  {
    id: 'claude-sonnet-4',
    contextWindow: 200000,
    maxOutputTokens: 64000,
    latest: { effectiveFrom: JAN, inputPerMTok: '3.0000000000', outputPerMTok: '15.0000000000', cacheReadPerMTok: '0.3000000000', cacheWritePerMTok: '3.7500000000' },
  },
  { id: 'unpriced-yet', contextWindow: null, maxOutputTokens: null, latest: null },
];

describe('planning a LiteLLM import against the book', () => {
  it('a model whose four rates are equal by value (2.5 = 2.5000000000) gets no version; a changed one gets one with its diff', () => {
    const plan = planPriceImport(LITELLM, BOOK, { effectiveAt: NOV, models: new Map([['deepseek-r1', 'deepseek-reasoner']]) });
    expect(plan.entriesInFile).toBe(11);
    expect(plan.models.map((m) => [m.modelId, m.status])).toEqual([
      ['claude-sonnet-4', 'skipped'],
      ['deepseek-r1', 'changed'],
      ['gpt-4o', 'unchanged'],
      ['unpriced-yet', 'skipped'],
    ]);
    const r1 = plan.models.find((m) => m.modelId === 'deepseek-r1')!;
    expect(r1).toMatchObject({
      sourceKey: 'deepseek-reasoner',
      version: { inputPerMTok: '0.28', outputPerMTok: '0.42', cacheReadPerMTok: '0.028', cacheWritePerMTok: null },
      limits: null,
      changes: [
        { field: 'input_per_mtok', current: '0.5714', proposed: '0.28' },
        { field: 'output_per_mtok', current: '2.2857', proposed: '0.42' },
        { field: 'cache_read_per_mtok', current: '0.2286', proposed: '0.028' },
      ],
    });
    const gpt = plan.models.find((m) => m.modelId === 'gpt-4o')!;
    expect(gpt).toMatchObject({ sourceKey: 'gpt-4o', version: null, limits: null, changes: [] });
    expect(plan.models.find((m) => m.modelId === 'claude-sonnet-4')?.reason).toBe('the file has no model claude-sonnet-4 (map the model to its key in the file)');
  });

  it('a mapped model takes the context window and max output along; a cache write appearing is a change', () => {
    const plan = planPriceImport(LITELLM, BOOK, { effectiveAt: NOV, models: new Map([['claude-sonnet-4', 'claude-sonnet-4-5'], ['gpt-4o', 'gemini-2.5-pro']]) });
    const gemini = plan.models.find((m) => m.modelId === 'gpt-4o')!;
    expect(gemini.changes).toEqual([
      { field: 'input_per_mtok', current: '2.5', proposed: '1.25' },
      { field: 'cache_read_per_mtok', current: '1.25', proposed: '0.125' },
      { field: 'context_window', current: '128000', proposed: '1048576' },
      { field: 'max_output_tokens', current: '16384', proposed: '65535' },
    ]);
    expect(gemini.limits).toEqual({ contextWindow: 1048576, maxOutputTokens: 65535 });
    expect(gemini.notes).toEqual([expect.stringMatching(/^tiered prices/)]);
    // claude-sonnet-4-5 costs what the book has for claude-sonnet-4: nothing to add.
    expect(plan.models.find((m) => m.modelId === 'claude-sonnet-4')).toMatchObject({ status: 'unchanged', version: null });
  });

  it('a model with no version yet gets its first one; a model the book lacks is proposed as new only when mapped', () => {
    const plan = planPriceImport(LITELLM, BOOK, {
      effectiveAt: NOV,
      models: new Map([
        ['unpriced-yet', 'gpt-4o-mini'],
        ['qwen-turbo', 'dashscope/qwen-turbo'],
      ]),
    });
    expect(plan.models.find((m) => m.modelId === 'unpriced-yet')).toMatchObject({
      status: 'changed',
      version: { inputPerMTok: '0.15', outputPerMTok: '0.6', cacheReadPerMTok: '0.075', cacheWritePerMTok: null },
      limits: { contextWindow: 128000, maxOutputTokens: 16384 },
    });
    expect(plan.models.at(-1)).toMatchObject({
      modelId: 'qwen-turbo',
      status: 'new_model',
      provider: 'dashscope',
      version: { inputPerMTok: '0.05', outputPerMTok: '0.2', cacheReadPerMTok: '0.05', cacheWritePerMTok: null },
      limits: { contextWindow: 129024, maxOutputTokens: 16384 },
    });
    expect(plan.models).toHaveLength(BOOK.length + 1);
  });

  it('an entry the book cannot take exactly is skipped with its reason, and a null mapping leaves a model out', () => {
    const plan = planPriceImport(LITELLM, BOOK, { effectiveAt: NOV, models: new Map([['deepseek-r1', 'novita/deepseek/deepseek-v4-pro'], ['gpt-4o', null]]) });
    expect(plan.models.find((m) => m.modelId === 'deepseek-r1')).toMatchObject({ status: 'skipped', version: null, reason: expect.stringContaining('1.6000000000000001 per million') });
    expect(plan.models.find((m) => m.modelId === 'gpt-4o')).toMatchObject({ status: 'skipped', sourceKey: null, reason: 'left out by the mapping' });
  });
});

describe('the rules an import keeps', () => {
  it('the effective instant must be after the latest version of every model that changes (not of the unchanged ones)', () => {
    const book: BookModel[] = [{ ...BOOK[0], latest: { ...BOOK[0].latest!, effectiveFrom: NOV } }, { ...BOOK[1], latest: { ...BOOK[1].latest!, effectiveFrom: new Date('2027-01-01T00:00:00Z') } }];
    const options = { effectiveAt: NOV, models: new Map([['deepseek-r1', 'deepseek-reasoner']]) };
    expect(() => planPriceImport(LITELLM, book, options)).toThrow(
      'effective_at: must be after the latest price version of every model it changes (versions are immutable; an import only adds versions after them): deepseek-r1 (2026-11-01T00:00:00.000Z)',
    );
    // gpt-4o's version of 2027 does not matter: its prices are unchanged.
    expect(planPriceImport(LITELLM, book, { ...options, effectiveAt: new Date(NOV.getTime() + 1) }).models.map((m) => m.status)).toEqual(['changed', 'unchanged']);
  });

  it('a mapping naming a key the file lacks, or a new model id no usage event could name, is refused as a whole', () => {
    expect(() => planPriceImport(LITELLM, BOOK, { effectiveAt: NOV, models: new Map([['deepseek-r1', 'deepseek/deepseek-v9']]) })).toThrow(
      'models: the file has no model deepseek-r1=deepseek/deepseek-v9',
    );
    expect(() => planPriceImport(LITELLM, BOOK, { effectiveAt: NOV, models: new Map([['openai/gpt-4o', 'gpt-4o']]) })).toThrow(
      'models: openai/gpt-4o cannot be a new model id',
    );
  });

  it('OpenRouter: deepseek/deepseek-r1 at the seed rates is unchanged but brings its 163840-token context window', () => {
    const plan = planPriceImport(OPENROUTER, BOOK, { effectiveAt: NOV, models: new Map([['deepseek-r1', 'deepseek/deepseek-r1'], ['gpt-4o', 'openai/gpt-4o']]) });
    expect(plan.models.find((m) => m.modelId === 'deepseek-r1')).toMatchObject({
      status: 'changed',
      version: null,
      limits: { contextWindow: 163840, maxOutputTokens: 65536 },
      changes: [{ field: 'context_window', current: '131072', proposed: '163840' }],
    });
    expect(plan.models.find((m) => m.modelId === 'gpt-4o')).toMatchObject({ status: 'unchanged', changes: [] });
  });
});
