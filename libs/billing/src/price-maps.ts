import { isLosslessNumber, parse as parseLosslessJson, stringify as stringifyLosslessJson } from 'lossless-json';
import { ValidationError } from './errors';
import { Decimal, TOKENS_PER_MTOK } from './money';
import { isJsonObject } from './usage-schemas';

/**
 * Reading the price maps other people maintain: LiteLLM's `model_prices_and_context_window.json`
 * and OpenRouter's models list (`GET /api/v1/models`). Both quote USD per single token; the price
 * book keeps USD per million tokens with at most 10 decimals (NUMERIC(20, 10)).
 *
 * Exactness: LiteLLM writes its costs as JSON numbers (`5.714e-7`), and JSON.parse would turn each
 * into the nearest binary double before we could see it (Node 20 has no reviver `context.source`).
 * lossless-json keeps every number as its source text (a LosslessNumber), and the scaling by 10^6
 * is decimal arithmetic on that text, so `5.714e-7` becomes exactly `0.5714`. A per-token cost
 * whose per-million value needs more than 10 decimals (LiteLLM has float noise such as
 * `1.0000000000000001e-07`) is never rounded: its entry is reported as not importable.
 */
export const PRICE_MAP_FORMATS = ['litellm', 'openrouter'] as const;
export type PriceMapFormat = (typeof PRICE_MAP_FORMATS)[number];

/** A price version's four list rates: exact decimal strings, USD per million tokens. */
export interface ListRates {
  inputPerMTok: string;
  outputPerMTok: string;
  cacheReadPerMTok: string;
  /** null: cache writes are charged at the input rate. */
  cacheWritePerMTok: string | null;
}

/** One model of a price map, as the price book could hold it. */
export interface PriceMapEntry {
  /** The map's name for the model: LiteLLM's key, OpenRouter's `id`. */
  key: string;
  provider: string | null;
  /** null when the entry cannot be imported; `problem` says why. */
  rates: ListRates | null;
  problem: string | null;
  contextWindow: number | null;
  maxOutputTokens: number | null;
  /** What the price book cannot represent and so leaves out (tiers, a separate reasoning price). */
  notes: string[];
}

export interface PriceMap {
  format: PriceMapFormat;
  entries: ReadonlyMap<string, PriceMapEntry>;
  /** Each entry's JSON as the document had it (numbers as their source text), for priceMapSubset. */
  raw: ReadonlyMap<string, unknown>;
}

// The price book's columns: NUMERIC(20, 10) rates and 1..1e9 token limits (the admin API's rules).
const RATE_DECIMALS = 10;
const RATE_INTEGER_DIGITS = 10;
const MAX_TOKEN_LIMIT = 1_000_000_000;
// Plain decimal notation with an optional exponent, non-negative: no hex, no Infinity, no sign.
const PER_TOKEN_TEXT = /^\d+(\.\d+)?([eE][+-]?\d{1,4})?$/;

/**
 * USD per token (a JSON number's source text or a decimal string) as USD per million tokens,
 * exactly. Throws ValidationError(field) when the value is not a non-negative decimal or its
 * per-million value does not fit the price book's NUMERIC(20, 10).
 */
export function perMTokFromPerToken(perToken: string, field: string): string {
  if (!PER_TOKEN_TEXT.test(perToken)) {
    const shown = perToken.length > 40 ? `${perToken.slice(0, 40)}...` : perToken;
    throw new ValidationError(field, `${shown} is not a non-negative decimal`);
  }
  const value = new Decimal(perToken);
  // Scaling by 10^6 keeps the significant digits; more than 20 of them can never fit (20, 10),
  // and checking first means the multiplication (60-digit precision) is always exact.
  if (value.sd() > RATE_DECIMALS + RATE_INTEGER_DIGITS) throw new ValidationError(field, `${perToken} per token has more digits than the price book keeps (10 decimals per million tokens)`);
  const perMTok = value.times(TOKENS_PER_MTOK);
  if (perMTok.decimalPlaces() > RATE_DECIMALS) {
    throw new ValidationError(field, `${perToken} per token is ${perMTok.toFixed()} per million tokens: more than the price book's 10 decimals`);
  }
  if (perMTok.gte(new Decimal(10).pow(RATE_INTEGER_DIGITS))) throw new ValidationError(field, `${perToken} per token is more than the price book can hold`);
  return perMTok.toFixed();
}

/**
 * Parses a price map. Throws ValidationError('content', ...) when the document is not JSON or
 * not the format's shape; entries the book cannot take are returned with their `problem`.
 */
export function parsePriceMap(text: string, format: PriceMapFormat): PriceMap {
  let doc: unknown;
  try {
    doc = parseLosslessJson(text);
  } catch (err) {
    throw new ValidationError('content', `is not valid JSON: ${(err as Error).message}`);
  }
  return format === 'litellm' ? readLiteLlm(doc) : readOpenRouter(doc);
}

/**
 * A document in the same format holding only `keys`' entries, their numbers written exactly as
 * the original had them (the dashboard's apply form carries this instead of the whole file).
 * parsePriceMap reads the same entries from it.
 */
export function priceMapSubset(map: PriceMap, keys: Iterable<string>): string {
  const picked = [...new Set(keys)].filter((k) => map.raw.has(k));
  if (map.format === 'litellm') return stringifyLosslessJson(Object.fromEntries(picked.map((k) => [k, map.raw.get(k)]))) ?? '{}';
  return stringifyLosslessJson({ data: picked.map((k) => map.raw.get(k)) }) ?? '{"data":[]}';
}

// ---------------------------------------------------------------------------------------------
// LiteLLM: { "<model>": { input_cost_per_token: 5.714e-7, output_cost_per_token, ... }, ... }

// LiteLLM documents its fields in a pseudo-entry whose values are descriptions, not prices.
const LITELLM_SAMPLE_KEY = 'sample_spec';

function readLiteLlm(doc: unknown): PriceMap {
  if (!isJsonObject(doc)) throw new ValidationError('content', 'a LiteLLM price map is a JSON object of models (model_prices_and_context_window.json)');
  const entries = new Map<string, PriceMapEntry>();
  const raw = new Map<string, unknown>();
  for (const [key, value] of Object.entries(doc)) {
    if (key === LITELLM_SAMPLE_KEY || !isJsonObject(value)) continue;
    raw.set(key, value);
    entries.set(key, liteLlmEntry(key, value));
  }
  return { format: 'litellm', entries, raw };
}

function liteLlmEntry(key: string, e: Record<string, unknown>): PriceMapEntry {
  const notes: string[] = [];
  const entry = {
    key,
    provider: typeof e.litellm_provider === 'string' ? e.litellm_provider : null,
    contextWindow: tokenLimit(e.max_input_tokens, 'max_input_tokens', notes),
    maxOutputTokens: tokenLimit(e.max_output_tokens, 'max_output_tokens', notes),
    notes,
  };
  try {
    const input = requiredRate(e, 'input_cost_per_token');
    const output = requiredRate(e, 'output_cost_per_token');
    const cacheRead = optionalRate(e, 'cache_read_input_token_cost');
    const cacheWrite = optionalRate(e, 'cache_creation_input_token_cost');
    // LiteLLM's own cost code charges cached tokens at the input rate when there is no cache price.
    if (cacheRead === null) notes.push('no cache_read_input_token_cost: cache reads at the input rate');
    noteReasoningPrice(optionalRate(e, 'output_cost_per_reasoning_token'), output, 'output_cost_per_reasoning_token', notes);
    const tiers = Object.keys(e).filter((k) => /cost/.test(k) && /_above_\d+k?_tokens/.test(k));
    if (tiers.length > 0) notes.push(`tiered prices (${tiers.sort().join(', ')}) are not imported: the price book has one rate per token type`);
    return { ...entry, rates: ratesOf(input, output, cacheRead, cacheWrite), problem: null };
  } catch (err) {
    if (err instanceof ValidationError) return { ...entry, rates: null, problem: err.message };
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// OpenRouter: { data: [{ id, pricing: { prompt: "0.0000005714", completion, input_cache_read,
// input_cache_write, internal_reasoning }, context_length, top_provider: { max_completion_tokens } }] }

function readOpenRouter(doc: unknown): PriceMap {
  const data = isJsonObject(doc) ? doc.data : undefined;
  if (!Array.isArray(data)) throw new ValidationError('content', 'an OpenRouter models list is a JSON object with a "data" array (GET /api/v1/models)');
  const entries = new Map<string, PriceMapEntry>();
  const raw = new Map<string, unknown>();
  data.forEach((item, i) => {
    if (!isJsonObject(item) || typeof item.id !== 'string' || item.id === '') throw new ValidationError('content', `data[${i}] is not a model with a string "id"`);
    if (entries.has(item.id)) throw new ValidationError('content', `data[${i}]: model ${item.id} appears twice`);
    raw.set(item.id, item);
    entries.set(item.id, openRouterEntry(item.id, item));
  });
  return { format: 'openrouter', entries, raw };
}

function openRouterEntry(key: string, m: Record<string, unknown>): PriceMapEntry {
  const notes: string[] = [];
  const topProvider = isJsonObject(m.top_provider) ? m.top_provider : {};
  const slash = key.indexOf('/');
  const entry = {
    key,
    // OpenRouter ids are "<provider>/<model>".
    provider: slash > 0 ? key.slice(0, slash) : null,
    contextWindow: tokenLimit(m.context_length, 'context_length', notes),
    maxOutputTokens: tokenLimit(topProvider.max_completion_tokens, 'top_provider.max_completion_tokens', notes),
    notes,
  };
  try {
    if (!isJsonObject(m.pricing)) throw new ValidationError('pricing', 'is missing');
    const p = m.pricing;
    const input = requiredRate(p, 'prompt', 'pricing.');
    const output = requiredRate(p, 'completion', 'pricing.');
    const cacheRead = optionalRate(p, 'input_cache_read', 'pricing.');
    const cacheWrite = optionalRate(p, 'input_cache_write', 'pricing.');
    if (cacheRead === null) notes.push('no pricing.input_cache_read: cache reads at the input rate');
    const reasoning = optionalRate(p, 'internal_reasoning', 'pricing.');
    // "0" is OpenRouter's "not charged separately": reasoning is billed as completion tokens.
    noteReasoningPrice(reasoning !== null && new Decimal(reasoning).isZero() ? null : reasoning, output, 'pricing.internal_reasoning', notes);
    return { ...entry, rates: ratesOf(input, output, cacheRead, cacheWrite), problem: null };
  } catch (err) {
    if (err instanceof ValidationError) return { ...entry, rates: null, problem: err.message };
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Field readers

/** Both maps charge cached tokens at the input rate when they give no cache read price. */
function ratesOf(input: string, output: string, cacheRead: string | null, cacheWrite: string | null): ListRates {
  return { inputPerMTok: input, outputPerMTok: output, cacheReadPerMTok: cacheRead ?? input, cacheWritePerMTok: cacheWrite };
}

/** A cost's decimal text: a JSON number's source text, or a decimal string (OpenRouter's form). */
function decimalTextOf(value: unknown, field: string): string {
  if (isLosslessNumber(value)) return value.value;
  if (typeof value === 'string') return value.trim();
  throw new ValidationError(field, `must be a number or a decimal string, not ${value === null ? 'null' : typeof value}`);
}

function optionalRate(o: Record<string, unknown>, name: string, prefix = ''): string | null {
  const value = o[name];
  if (value === undefined || value === null) return null;
  return perMTokFromPerToken(decimalTextOf(value, prefix + name), prefix + name);
}

function requiredRate(o: Record<string, unknown>, name: string, prefix = ''): string {
  const rate = optionalRate(o, name, prefix);
  if (rate === null) throw new ValidationError(prefix + name, 'is missing (the price book prices tokens: input and output rates are required)');
  return rate;
}

/** The price book bills reasoning tokens as output tokens: a different reasoning price is left out, and said so. */
function noteReasoningPrice(reasoning: string | null, output: string, field: string, notes: string[]): void {
  if (reasoning !== null && !new Decimal(reasoning).eq(output)) {
    notes.push(`${field} (${reasoning} per million) is not imported: reasoning tokens are billed at the output rate`);
  }
}

/** A context window or output limit; anything but a whole number in 1..1e9 is left unset, with a note. */
function tokenLimit(value: unknown, field: string, notes: string[]): number | null {
  if (value === undefined || value === null) return null;
  if (isLosslessNumber(value) && /^\d+$/.test(value.value)) {
    const n = Number(value.value);
    if (n >= 1 && n <= MAX_TOKEN_LIMIT) return n;
  }
  const shown = isLosslessNumber(value) ? value.value : String(JSON.stringify(value)).slice(0, 40);
  notes.push(`${field} (${shown}) is not a whole number of tokens from 1 to 1e9: left as it is`);
  return null;
}
