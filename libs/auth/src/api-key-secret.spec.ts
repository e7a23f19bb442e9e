import crypto = require('node:crypto');
import { generateApiKey, hashApiKey, hashesEqual, prefixOfApiKey, randomBase62 } from './api-key-secret';

describe('API key secrets', () => {
  it('generates tm_live_<8>_<32> base62 keys whose prefix is visible and whose hash is sha256 hex', () => {
    const { key, prefix, secretHash } = generateApiKey();
    expect(key).toMatch(/^tm_live_[0-9A-Za-z]{8}_[0-9A-Za-z]{32}$/);
    expect(key.startsWith(`${prefix}_`)).toBe(true);
    expect(secretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(secretHash).not.toContain(key.slice(-32));
    expect(prefixOfApiKey(key)).toBe(prefix);
    expect(hashesEqual(hashApiKey(key), secretHash)).toBe(true);
  });

  it('draws every character from crypto.randomBytes, dropping bytes >= 248 so that % 62 has no bias', () => {
    // 255 must be skipped (255 % 62 would favour the first 8 characters); 63 % 62 = 1 is the character '1'.
    jest.spyOn(crypto, 'randomBytes').mockImplementation(((n: number) =>
      Buffer.from(Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 255 : 63)))) as typeof crypto.randomBytes);
    try {
      expect(generateApiKey().key).toBe(`tm_live_${'1'.repeat(8)}_${'1'.repeat(32)}`);
    } finally {
      jest.restoreAllMocks();
    }
  });

  it('uses every base62 character (no modulo bias towards the start of the alphabet)', () => {
    const sample = randomBase62(62 * 400);
    const counts = new Map<string, number>();
    for (const c of sample) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    for (const n of counts.values()) expect(n).toBeGreaterThan(250);
  });

  it('derives a prefix for a long foreign secret (TOKENMETER_ADMIN_KEY) and refuses short or odd ones', () => {
    expect(prefixOfApiKey('a-long-enough-admin-secret-1234')).toMatch(/^tm_sha_[0-9a-f]{16}$/);
    expect(prefixOfApiKey('short')).toBeUndefined();
    expect(prefixOfApiKey('has whitespace but is long enough')).toBeUndefined();
    expect(prefixOfApiKey('x'.repeat(1000))).toBeUndefined();
  });
});

describe('hashesEqual', () => {
  afterEach(() => jest.restoreAllMocks());

  it('compares two 32-byte digests with crypto.timingSafeEqual, whatever the inputs', () => {
    const compare = jest.spyOn(crypto, 'timingSafeEqual');
    const a = hashApiKey('tm_live_AAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB');
    const b = hashApiKey('tm_live_AAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBC');
    expect(hashesEqual(a, a)).toBe(true);
    expect(hashesEqual(a, b)).toBe(false);
    // Differs only in the last byte: the time taken must not say how much of it matched.
    expect(hashesEqual(a, `${a.slice(0, 62)}${a.endsWith('00') ? '01' : '00'}`)).toBe(false);
    expect(compare).toHaveBeenCalledTimes(3);
    for (const [x, y] of compare.mock.calls) {
      expect([(x as Buffer).length, (y as Buffer).length]).toEqual([32, 32]);
    }
  });

  it('answers false, never throws, for something that is not a sha256 hex digest', () => {
    const a = hashApiKey('x'.repeat(40));
    for (const bad of ['', 'abc', a.slice(0, 63), `${a}00`, 'zz'.repeat(32)]) {
      expect(hashesEqual(a, bad)).toBe(false);
      expect(hashesEqual(bad, a)).toBe(false);
    }
  });
});

