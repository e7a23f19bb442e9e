import type { ZodIssue } from 'zod';
import {
  validateAnthropicUsage,
  validateCanonicalUsage,
  validateDeepSeekUsage,
  validateOpenAiUsage,
  type AnthropicUsage,
  type CanonicalUsage,
  type DeepSeekUsage,
  type OpenAiUsage,
} from './usage-schemas';
import { describeIssues } from './zod-issues';

export type UsageFormat = 'canonical' | 'openai' | 'anthropic' | 'deepseek';

/** Normalised token counts; integers 0 <= n < 1e9. The four priced buckets are disjoint. */
export interface TokenCounts {
  /** Uncached input: never includes cache-read or cache-write tokens. */
  inputTokens: number;
  /** All output, reasoning included. */
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  /** Informational: the part of outputTokens spent on reasoning. Not priced separately. */
  reasoningTokens: number;
}

/** Every token count must be below this (exclusive). */
export const MAX_TOKEN_COUNT = 1_000_000_000;

export type UsageNormalisation =
  | { ok: true; format: UsageFormat; tokens: TokenCounts }
  | { ok: false; code: 'schema' | 'invariant'; reason: string };

// Key families. A usage object mixing families is rejected rather than guessed: picking the
// wrong one would either double-charge cached tokens or drop them.
const PROMPT_FAMILY = [
  'prompt_tokens',
  'completion_tokens',
  'prompt_tokens_details',
  'completion_tokens_details',
  'prompt_cache_hit_tokens',
  'prompt_cache_miss_tokens',
] as const;
const INPUT_OUTPUT_PAIR = ['input_tokens', 'output_tokens'] as const; // Anthropic and canonical
const ANTHROPIC_CACHE = ['cache_read_input_tokens', 'cache_creation_input_tokens'] as const;
const CANONICAL_ONLY = ['cache_read_tokens', 'cache_write_tokens', 'reasoning_tokens'] as const;
// OpenAI Responses API usage looks canonical (input_tokens/output_tokens) but its input_tokens
// INCLUDES cached tokens. Read as canonical it would charge cache reads twice, so it is refused.
const RESPONSES_API_DETAILS = ['input_tokens_details', 'output_tokens_details'] as const;

const FOREIGN_KEYS: Record<UsageFormat, readonly string[]> = {
  openai: [...INPUT_OUTPUT_PAIR, ...ANTHROPIC_CACHE, ...CANONICAL_ONLY],
  deepseek: [...INPUT_OUTPUT_PAIR, ...ANTHROPIC_CACHE, ...CANONICAL_ONLY],
  anthropic: [...PROMPT_FAMILY, ...CANONICAL_ONLY],
  canonical: [...PROMPT_FAMILY],
};

// The keys that made detectUsageFormat pick a format, for the "ambiguous" reason.
const IDENTIFYING_KEYS: Record<UsageFormat, readonly string[]> = {
  openai: ['prompt_tokens'],
  deepseek: ['prompt_tokens'],
  anthropic: ANTHROPIC_CACHE,
  canonical: [...INPUT_OUTPUT_PAIR, ...CANONICAL_ONLY],
};

const hasOwn = (obj: object, key: string): boolean => Object.prototype.hasOwnProperty.call(obj, key);

/**
 * Detection rule (the same one docs/event-contract.md documents):
 *   1. has prompt_tokens -> 'deepseek' if prompt_cache_hit_tokens or prompt_cache_miss_tokens
 *      is present, else 'openai';
 *   2. else has cache_read_input_tokens or cache_creation_input_tokens -> 'anthropic';
 *   3. else 'canonical' (input_tokens and output_tokens required).
 * An Anthropic usage without any cache field is read as canonical; the normalisation is identical.
 */
export function detectUsageFormat(usage: object): UsageFormat {
  if (hasOwn(usage, 'prompt_tokens')) {
    return hasOwn(usage, 'prompt_cache_hit_tokens') || hasOwn(usage, 'prompt_cache_miss_tokens')
      ? 'deepseek'
      : 'openai';
  }
  if (hasOwn(usage, 'cache_read_input_tokens') || hasOwn(usage, 'cache_creation_input_tokens')) {
    return 'anthropic';
  }
  return 'canonical';
}

function familyOf(key: string): string {
  if ((PROMPT_FAMILY as readonly string[]).includes(key)) return 'OpenAI/DeepSeek';
  if ((ANTHROPIC_CACHE as readonly string[]).includes(key)) return 'Anthropic';
  if ((CANONICAL_ONLY as readonly string[]).includes(key)) return 'canonical';
  return 'Anthropic/canonical';
}

function firstOwnKey(usage: object, keys: readonly string[]): string | undefined {
  for (const key of keys) if (hasOwn(usage, key)) return key;
  return undefined;
}

/** null if n is a valid count, else the reason naming `path`. */
function countProblem(n: number, path: string): string | null {
  if (Number.isInteger(n) && n >= 0 && n < MAX_TOKEN_COUNT) return null;
  return `${path} must be an integer 0 <= n < ${MAX_TOKEN_COUNT} (got ${n})`;
}

function firstCountProblem(counts: ReadonlyArray<readonly [number, string]>): string | null {
  for (const [n, path] of counts) {
    const problem = countProblem(n, path);
    if (problem !== null) return problem;
  }
  return null;
}

const invariant = (reason: string): UsageNormalisation => ({ ok: false, code: 'invariant', reason });

function fromOpenAi(u: OpenAiUsage): UsageNormalisation {
  const cached = u.prompt_tokens_details?.cached_tokens ?? 0;
  const reasoning = u.completion_tokens_details?.reasoning_tokens ?? 0;
  const problem = firstCountProblem([
    [u.prompt_tokens, 'usage.prompt_tokens'],
    [u.completion_tokens, 'usage.completion_tokens'],
    [cached, 'usage.prompt_tokens_details.cached_tokens'],
    [reasoning, 'usage.completion_tokens_details.reasoning_tokens'],
  ]);
  if (problem !== null) return invariant(problem);
  if (cached > u.prompt_tokens) {
    return invariant(
      `usage.prompt_tokens_details.cached_tokens (${cached}) must not exceed usage.prompt_tokens (${u.prompt_tokens})`,
    );
  }
  if (reasoning > u.completion_tokens) {
    return invariant(
      `usage.completion_tokens_details.reasoning_tokens (${reasoning}) must not exceed usage.completion_tokens (${u.completion_tokens})`,
    );
  }
  // OpenAI's prompt_tokens includes the cached ones; cache reads are charged only at the cache rate.
  return {
    ok: true,
    format: 'openai',
    tokens: {
      inputTokens: u.prompt_tokens - cached,
      outputTokens: u.completion_tokens,
      cacheReadTokens: cached,
      cacheWriteTokens: 0,
      reasoningTokens: reasoning,
    },
  };
}

function fromDeepSeek(u: DeepSeekUsage): UsageNormalisation {
  const hit = u.prompt_cache_hit_tokens;
  const miss = u.prompt_cache_miss_tokens;
  const reasoning = u.completion_tokens_details?.reasoning_tokens ?? 0;
  const problem = firstCountProblem([
    [u.prompt_tokens, 'usage.prompt_tokens'],
    [u.completion_tokens, 'usage.completion_tokens'],
    [hit, 'usage.prompt_cache_hit_tokens'],
    [miss, 'usage.prompt_cache_miss_tokens'],
    [reasoning, 'usage.completion_tokens_details.reasoning_tokens'],
  ]);
  if (problem !== null) return invariant(problem);
  if (hit + miss !== u.prompt_tokens) {
    return invariant(
      `usage.prompt_cache_hit_tokens + usage.prompt_cache_miss_tokens (${hit + miss}) must equal usage.prompt_tokens (${u.prompt_tokens})`,
    );
  }
  if (reasoning > u.completion_tokens) {
    return invariant(
      `usage.completion_tokens_details.reasoning_tokens (${reasoning}) must not exceed usage.completion_tokens (${u.completion_tokens})`,
    );
  }
  return {
    ok: true,
    format: 'deepseek',
    tokens: {
      inputTokens: miss,
      outputTokens: u.completion_tokens,
      cacheReadTokens: hit,
      cacheWriteTokens: 0,
      reasoningTokens: reasoning,
    },
  };
}

function fromAnthropic(u: AnthropicUsage): UsageNormalisation {
  const cacheRead = u.cache_read_input_tokens ?? 0;
  const cacheWrite = u.cache_creation_input_tokens ?? 0;
  const problem = firstCountProblem([
    [u.input_tokens, 'usage.input_tokens'],
    [u.output_tokens, 'usage.output_tokens'],
    [cacheRead, 'usage.cache_read_input_tokens'],
    [cacheWrite, 'usage.cache_creation_input_tokens'],
  ]);
  if (problem !== null) return invariant(problem);
  // Anthropic's input_tokens already excludes cache reads and cache writes: no subtraction.
  return {
    ok: true,
    format: 'anthropic',
    tokens: {
      inputTokens: u.input_tokens,
      outputTokens: u.output_tokens,
      cacheReadTokens: cacheRead,
      cacheWriteTokens: cacheWrite,
      reasoningTokens: 0,
    },
  };
}

function fromCanonical(u: CanonicalUsage): UsageNormalisation {
  const cacheRead = u.cache_read_tokens ?? 0;
  const cacheWrite = u.cache_write_tokens ?? 0;
  const reasoning = u.reasoning_tokens ?? 0;
  const problem = firstCountProblem([
    [u.input_tokens, 'usage.input_tokens'],
    [u.output_tokens, 'usage.output_tokens'],
    [cacheRead, 'usage.cache_read_tokens'],
    [cacheWrite, 'usage.cache_write_tokens'],
    [reasoning, 'usage.reasoning_tokens'],
  ]);
  if (problem !== null) return invariant(problem);
  if (reasoning > u.output_tokens) {
    return invariant(`usage.reasoning_tokens (${reasoning}) must not exceed usage.output_tokens (${u.output_tokens})`);
  }
  return {
    ok: true,
    format: 'canonical',
    tokens: {
      inputTokens: u.input_tokens,
      outputTokens: u.output_tokens,
      cacheReadTokens: cacheRead,
      cacheWriteTokens: cacheWrite,
      reasoningTokens: reasoning,
    },
  };
}

/** Detects the provider shape of a usage object and normalises it to disjoint TokenCounts. */
export function normaliseUsage(usage: object): UsageNormalisation {
  const responsesKey = firstOwnKey(usage, RESPONSES_API_DETAILS);
  if (responsesKey !== undefined) {
    return {
      ok: false,
      code: 'schema',
      reason:
        `unsupported usage shape: usage.${responsesKey} is OpenAI Responses API usage, whose input_tokens include ` +
        `cached tokens; send Chat Completions usage (prompt_tokens, ...) or canonical usage instead`,
    };
  }
  const format = detectUsageFormat(usage);
  const ownKey = firstOwnKey(usage, IDENTIFYING_KEYS[format]);
  const foreignKey = firstOwnKey(usage, FOREIGN_KEYS[format]);
  if (ownKey !== undefined && foreignKey !== undefined) {
    return {
      ok: false,
      code: 'schema',
      reason:
        `ambiguous usage shape: usage.${ownKey} (${familyOf(ownKey)}) and ` +
        `usage.${foreignKey} (${familyOf(foreignKey)}) cannot appear together`,
    };
  }
  switch (format) {
    case 'openai': {
      const parsed = validateOpenAiUsage(usage);
      return parsed.success ? fromOpenAi(parsed.data) : schemaFailure(parsed.issues);
    }
    case 'deepseek': {
      const parsed = validateDeepSeekUsage(usage);
      return parsed.success ? fromDeepSeek(parsed.data) : schemaFailure(parsed.issues);
    }
    case 'anthropic': {
      const parsed = validateAnthropicUsage(usage);
      return parsed.success ? fromAnthropic(parsed.data) : schemaFailure(parsed.issues);
    }
    case 'canonical': {
      const parsed = validateCanonicalUsage(usage);
      return parsed.success ? fromCanonical(parsed.data) : schemaFailure(parsed.issues);
    }
  }
}

function schemaFailure(issues: readonly ZodIssue[]): UsageNormalisation {
  return { ok: false, code: 'schema', reason: describeIssues(issues, 'usage') };
}
