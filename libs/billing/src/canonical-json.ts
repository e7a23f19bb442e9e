import { hash } from 'node:crypto';

// Quoted object keys, memoised: the same few dozen keys (event_id, usage, prompt_tokens, ...)
// recur in every event and JSON.stringify of a key is a measurable part of hashing.
// Bounded so arbitrary metadata keys cannot grow it without limit.
const QUOTED_KEYS = new Map<string, string>();
const MAX_QUOTED_KEYS = 10_000;

// Strings with nothing to escape (the vast majority: ids, model names, routes) are quoted
// directly; anything with a quote, backslash, control character or surrogate goes through
// JSON.stringify, which defines the escaping.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

function quoteString(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : '"' + text + '"';
}

/** Insertion sort by UTF-16 code units: same order as Array#sort(), faster for a dozen keys. */
function sortKeys(keys: string[]): void {
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i];
    let j = i - 1;
    while (j >= 0 && keys[j] > key) {
      keys[j + 1] = keys[j];
      j--;
    }
    keys[j + 1] = key;
  }
}

function quoteKey(key: string): string {
  let quoted = QUOTED_KEYS.get(key);
  if (quoted === undefined) {
    quoted = quoteString(key);
    if (QUOTED_KEYS.size < MAX_QUOTED_KEYS) QUOTED_KEYS.set(key, quoted);
  }
  return quoted;
}

/**
 * JSON with object keys sorted recursively (by UTF-16 code unit, as Array.prototype.sort does),
 * no whitespace, arrays kept in order, strings and numbers written exactly as JSON.stringify
 * writes them. Two payloads that differ only in key order or formatting serialise identically,
 * which is what tells a Kafka redelivery apart from a different payload reusing an event_id.
 *
 * Input must be JSON data (the result of JSON.parse). Like JSON.stringify, object members whose
 * value is undefined are skipped, and non-finite numbers become null.
 */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return quoteString(value);
    case 'number':
      // Same digits as JSON.stringify for every finite number (both use Number#toString).
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    default:
      return JSON.stringify(value) ?? 'null';
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const item: unknown = value[i];
      out += item === undefined ? 'null' : canonicalJson(item);
    }
    return out + ']';
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  sortKeys(keys);
  let out = '{';
  let first = true;
  for (let i = 0; i < keys.length; i++) {
    const member = record[keys[i]];
    if (member === undefined) continue;
    if (!first) out += ',';
    first = false;
    out += quoteKey(keys[i]) + ':' + canonicalJson(member);
  }
  return out + '}';
}

/** Lowercase hex sha256 of the canonical JSON of `value`. */
export function canonicalHash(value: unknown): string {
  // One-shot crypto.hash (Node >= 20.12): markedly cheaper than createHash() for small inputs.
  return hash('sha256', canonicalJson(value), 'hex');
}
