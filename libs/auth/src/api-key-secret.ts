import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * API key format: `tm_live_<prefix: 8 base62>_<secret: 32 base62>`, e.g.
 * `tm_live_Xa81kPq0_v3J...`. 32 base62 characters are ~190 bits of entropy.
 *
 * - `tm_live_<prefix>` is stored and shown (lists, logs, audit) to identify a key; it is unique
 *   and indexed, so authentication is one index lookup, then a constant-time hash comparison.
 * - Only sha256(key) is stored. A fast hash is right here: the secret is random and long, so
 *   there is nothing for a slow password hash to protect against.
 *
 * A key given through TOKENMETER_ADMIN_KEY may have any other shape (>= 24 characters); its
 * prefix is then derived from its hash (`tm_sha_<16 hex>`), so it is found the same way.
 */
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY_PATTERN = /^(tm_live_[0-9A-Za-z]{8})_[0-9A-Za-z]{32}$/;
export const MIN_FOREIGN_KEY_LENGTH = 24;
const MAX_KEY_LENGTH = 256;

export interface GeneratedApiKey {
  /** The whole key: shown once, never stored. */
  key: string;
  prefix: string;
  secretHash: string;
}

/** Uniform base62 from crypto.randomBytes (bytes >= 248 are dropped so `% 62` has no bias). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export function generateApiKey(): GeneratedApiKey {
  const prefix = `tm_live_${randomBase62(8)}`;
  const key = `${prefix}_${randomBase62(32)}`;
  return { key, prefix, secretHash: hashApiKey(key) };
}

/** Key ids are public identifiers (audit log, usage filters); not secrets. */
export function newApiKeyId(): string {
  return `key_${randomBase62(16)}`;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The stored prefix that identifies `key`, or undefined if it cannot be a key at all. */
export function prefixOfApiKey(key: string): string | undefined {
  if (key.length > MAX_KEY_LENGTH) return undefined;
  const match = KEY_PATTERN.exec(key);
  if (match) return match[1];
  if (key.length < MIN_FOREIGN_KEY_LENGTH || /\s/.test(key)) return undefined;
  return `tm_sha_${hashApiKey(key).slice(0, 16)}`;
}

/** Constant-time comparison of two sha256 hex digests. */
export function hashesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === 32 && y.length === 32 && timingSafeEqual(x, y);
}
