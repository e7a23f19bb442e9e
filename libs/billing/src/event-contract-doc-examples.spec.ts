import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseUsageEvent } from './usage-event';
import { ID_PATTERN, envelopeSchema } from './usage-schemas';

const DOCS = join(__dirname, '..', '..', '..', 'docs');
const contract = readFileSync(join(DOCS, 'event-contract.md'), 'utf8');
const schema = JSON.parse(readFileSync(join(DOCS, 'usage-event.schema.json'), 'utf8'));

// Every ```json block in the contract is an example event, followed by the line stating what it
// normalises to. Both halves are checked, so the document cannot drift from the parser.
const EXAMPLE =
  /```json\n([\s\S]*?)```\s*\nNormalises to \(`(\w+)`\): input (\d+) · output (\d+) · cache read (\d+) · cache write (\d+) · reasoning (\d+)/g;

const examples = [...contract.matchAll(EXAMPLE)].map((m) => ({
  json: m[1],
  format: m[2],
  tokens: {
    inputTokens: Number(m[3]),
    outputTokens: Number(m[4]),
    cacheReadTokens: Number(m[5]),
    cacheWriteTokens: Number(m[6]),
    reasoningTokens: Number(m[7]),
  },
}));

describe('docs/event-contract.md examples parse as documented', () => {
  it('every json block is an example with its stated normalisation', () => {
    const jsonBlocks = contract.match(/```json\n/g) ?? [];
    expect(examples.length).toBe(jsonBlocks.length);
    expect(examples.map((e) => e.format)).toEqual(['canonical', 'openai', 'anthropic', 'deepseek']);
  });

  it.each(examples.map((e) => [e.format, e] as const))('the %s example parses and normalises as stated', (_format, example) => {
    const occurredAt = JSON.parse(example.json).occurred_at as string;
    const result = parseUsageEvent(example.json, new Date(occurredAt));
    if (!result.ok) throw new Error(`${result.rejection.code}: ${result.rejection.reason}`);
    expect(result.event.usageFormat).toBe(example.format);
    expect(result.event.tokens).toEqual(example.tokens);
  });
});

describe('docs/usage-event.schema.json matches the parser', () => {
  it('has the same top-level fields, required fields and id rule', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties).sort()).toEqual(Object.keys(envelopeSchema.shape).sort());
    const required = Object.entries(envelopeSchema.shape)
      .filter(([, field]) => !field.isOptional())
      .map(([key]) => key)
      .sort();
    expect([...schema.required].sort()).toEqual(required);
    expect(schema.$defs.id.pattern).toBe(ID_PATTERN.source);
  });

  it('offers usage as oneOf the four shapes', () => {
    const shapes = schema.properties.usage.oneOf.map((ref: { $ref: string }) => schema.$defs[ref.$ref.replace('#/$defs/', '')].title);
    expect(shapes).toEqual(['canonical', 'openai', 'anthropic', 'deepseek']);
    expect(schema.$defs.count).toEqual({ type: 'integer', minimum: 0, exclusiveMaximum: 1_000_000_000 });
  });
});
