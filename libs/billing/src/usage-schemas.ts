import { z, type ZodIssue } from 'zod';

/**
 * The zod schemas of gateway.usage.v1, each paired with a hand-rolled check of the same rule.
 *
 * Why two: parsing runs ~50,000 times a second in the ingestor, and zod's safeParse costs several
 * microseconds per object (it copies every object it validates). The hand-rolled check answers
 * only "certainly valid"; when it says no, zod runs and is the authority: it decides, and its
 * issues become the rejection reason. A fast check may therefore be stricter than its schema,
 * never looser. fast-path-agrees-with-zod.spec.ts holds them to that.
 *
 * All schemas are built once, here, at module load.
 */

export type Validation<T> = { success: true; data: T } | { success: false; issues: ZodIssue[] };

function withFastPath<T>(schema: z.ZodType<T>, isCertainlyValid: (value: unknown) => boolean) {
  return (value: unknown): Validation<T> => {
    // Safe cast: isCertainlyValid accepts a subset of what the schema accepts, and the fields
    // read downstream are exactly the schema's.
    if (isCertainlyValid(value)) return { success: true, data: value as T };
    const parsed = schema.safeParse(value);
    return parsed.success ? { success: true, data: parsed.data } : { success: false, issues: parsed.error.issues };
  };
}

/** A plain object, as JSON.parse makes them (so not an array, Date, Map, ... which zod treats apart). */
export const isJsonObject = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};

// ---------------------------------------------------------------------------------------------
// Envelope (top level)

export const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
const ID_RULE = 'must be 1-128 characters from [A-Za-z0-9._:-]';
const idString = z.string().regex(ID_PATTERN, ID_RULE);
const jsonObject = z.record(z.unknown());

// strict(): unknown top-level fields are rejected, because the contract is versioned by topic
// name; a new field means gateway.usage.v2.
export const envelopeSchema = z
  .object({
    event_id: idString,
    occurred_at: z.string(),
    account_id: idString,
    api_key_id: idString.nullable().optional(),
    model: z.string().min(1, 'must not be empty').max(128, 'must be at most 128 characters'),
    request_id: z.string().max(256, 'must be at most 256 characters').nullable().optional(),
    usage: jsonObject,
    metadata: jsonObject.nullable().optional(),
  })
  .strict();
export type Envelope = z.infer<typeof envelopeSchema>;

const ENVELOPE_KEYS = new Set(Object.keys(envelopeSchema.shape));

export function isEnvelopeCertainlyValid(value: unknown): boolean {
  if (!isJsonObject(value)) return false;
  for (const key in value) if (!ENVELOPE_KEYS.has(key)) return false;
  const v = value;
  return (
    typeof v.event_id === 'string' &&
    ID_PATTERN.test(v.event_id) &&
    typeof v.occurred_at === 'string' &&
    typeof v.account_id === 'string' &&
    ID_PATTERN.test(v.account_id) &&
    (v.api_key_id === undefined || v.api_key_id === null || (typeof v.api_key_id === 'string' && ID_PATTERN.test(v.api_key_id))) &&
    typeof v.model === 'string' &&
    v.model.length >= 1 &&
    v.model.length <= 128 &&
    (v.request_id === undefined || v.request_id === null || (typeof v.request_id === 'string' && v.request_id.length <= 256)) &&
    isJsonObject(v.usage) &&
    (v.metadata === undefined || v.metadata === null || isJsonObject(v.metadata))
  );
}

export const validateEnvelope = withFastPath(envelopeSchema, isEnvelopeCertainlyValid);

// ---------------------------------------------------------------------------------------------
// Usage shapes. Counts are only type-checked: integer/range rules are checked in usage-shapes.ts
// so they come back as `invariant` failures naming the field and the value. Optional counts may
// be absent or null (some OpenAI-compatible servers send null): both mean 0. Unknown keys
// (total_tokens, audio_tokens, ...) are allowed; they stay in usageRaw.

const count = z.number();
const optionalCount = z.number().nullable().optional();

export const openAiUsageSchema = z.object({
  prompt_tokens: count,
  completion_tokens: count,
  prompt_tokens_details: z.object({ cached_tokens: optionalCount }).nullable().optional(),
  completion_tokens_details: z.object({ reasoning_tokens: optionalCount }).nullable().optional(),
});
export const deepSeekUsageSchema = openAiUsageSchema.extend({
  prompt_cache_hit_tokens: count,
  prompt_cache_miss_tokens: count,
});
export const anthropicUsageSchema = z.object({
  input_tokens: count,
  output_tokens: count,
  cache_read_input_tokens: optionalCount,
  cache_creation_input_tokens: optionalCount,
});
export const canonicalUsageSchema = z.object({
  input_tokens: count,
  output_tokens: count,
  cache_read_tokens: optionalCount,
  cache_write_tokens: optionalCount,
  reasoning_tokens: optionalCount,
});

export type OpenAiUsage = z.infer<typeof openAiUsageSchema>;
export type DeepSeekUsage = z.infer<typeof deepSeekUsageSchema>;
export type AnthropicUsage = z.infer<typeof anthropicUsageSchema>;
export type CanonicalUsage = z.infer<typeof canonicalUsageSchema>;

// zod's z.number() rejects NaN, so these do too (JSON cannot carry NaN, but the rule is "never looser").
const isCount = (v: unknown): boolean => typeof v === 'number' && !Number.isNaN(v);
const isOptionalCount = (v: unknown): boolean => v === undefined || v === null || isCount(v);
const isOptionalDetails = (v: unknown, key: string): boolean =>
  v === undefined || v === null || (isJsonObject(v) && isOptionalCount(v[key]));

export function isOpenAiUsageCertainlyValid(u: unknown): boolean {
  return (
    isJsonObject(u) &&
    isCount(u.prompt_tokens) &&
    isCount(u.completion_tokens) &&
    isOptionalDetails(u.prompt_tokens_details, 'cached_tokens') &&
    isOptionalDetails(u.completion_tokens_details, 'reasoning_tokens')
  );
}
export function isDeepSeekUsageCertainlyValid(u: unknown): boolean {
  return (
    isOpenAiUsageCertainlyValid(u) &&
    isCount((u as Record<string, unknown>).prompt_cache_hit_tokens) &&
    isCount((u as Record<string, unknown>).prompt_cache_miss_tokens)
  );
}
export function isAnthropicUsageCertainlyValid(u: unknown): boolean {
  return (
    isJsonObject(u) &&
    isCount(u.input_tokens) &&
    isCount(u.output_tokens) &&
    isOptionalCount(u.cache_read_input_tokens) &&
    isOptionalCount(u.cache_creation_input_tokens)
  );
}
export function isCanonicalUsageCertainlyValid(u: unknown): boolean {
  return (
    isJsonObject(u) &&
    isCount(u.input_tokens) &&
    isCount(u.output_tokens) &&
    isOptionalCount(u.cache_read_tokens) &&
    isOptionalCount(u.cache_write_tokens) &&
    isOptionalCount(u.reasoning_tokens)
  );
}

export const validateOpenAiUsage = withFastPath(openAiUsageSchema, isOpenAiUsageCertainlyValid);
export const validateDeepSeekUsage = withFastPath(deepSeekUsageSchema, isDeepSeekUsageCertainlyValid);
export const validateAnthropicUsage = withFastPath(anthropicUsageSchema, isAnthropicUsageCertainlyValid);
export const validateCanonicalUsage = withFastPath(canonicalUsageSchema, isCanonicalUsageCertainlyValid);
