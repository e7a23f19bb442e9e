import { AuthFailureThrottle, clientKey } from './auth-failure-throttle';

describe('AuthFailureThrottle', () => {
  let nowMs: number;
  const blocked: string[] = [];
  const sut = (limit = 3, windowMs = 60_000, maxAddresses = 1000) =>
    new AuthFailureThrottle({ limit, windowMs, maxAddresses, onBlock: (client) => blocked.push(client) }, () => nowMs);

  beforeEach(() => {
    nowMs = 1_000_000;
    blocked.length = 0;
  });

  it('lets an address fail `limit` times, then refuses it for a window from the last failure', () => {
    const throttle = sut();
    throttle.recordFailure('10.0.0.1');
    throttle.recordFailure('10.0.0.1');
    expect(throttle.retryAfterMs('10.0.0.1')).toBe(0);
    nowMs += 10_000;
    throttle.recordFailure('10.0.0.1');
    expect(throttle.retryAfterMs('10.0.0.1')).toBe(60_000);
    expect(blocked).toEqual(['10.0.0.1']);
    nowMs += 59_999;
    expect(throttle.retryAfterMs('10.0.0.1')).toBe(1);
    nowMs += 1;
    expect(throttle.retryAfterMs('10.0.0.1')).toBe(0);
    // A fresh window: one failure is not enough to block again.
    throttle.recordFailure('10.0.0.1');
    expect(throttle.retryAfterMs('10.0.0.1')).toBe(0);
  });

  it('counts within a window only: failures spread over windows never block', () => {
    const throttle = sut(3, 1000);
    for (let i = 0; i < 20; i++) {
      throttle.recordFailure('10.0.0.1');
      throttle.recordFailure('10.0.0.1');
      expect(throttle.retryAfterMs('10.0.0.1')).toBe(0);
      nowMs += 1000;
    }
  });

  it('never affects another address', () => {
    const throttle = sut(2);
    throttle.recordFailure('10.0.0.1');
    throttle.recordFailure('10.0.0.1');
    expect(throttle.retryAfterMs('10.0.0.1')).toBeGreaterThan(0);
    expect(throttle.retryAfterMs('10.0.0.2')).toBe(0);
    expect(throttle.retryAfterMs(undefined)).toBe(0);
  });

  it('keeps at most maxAddresses entries, dropping expired ones first and then the oldest', () => {
    const throttle = sut(2, 1000, 100);
    for (let i = 0; i < 100; i++) throttle.recordFailure(`10.0.${i >> 8}.${i & 255}`);
    expect(throttle.size).toBe(100);
    throttle.recordFailure('10.9.9.9');
    expect(throttle.size).toBe(100); // the oldest (10.0.0.0) made room
    throttle.recordFailure('10.0.0.0');
    expect(throttle.retryAfterMs('10.0.0.0')).toBe(0); // its first failure was forgotten
    nowMs += 1000;
    throttle.recordFailure('10.8.8.8');
    expect(throttle.size).toBe(1); // every other window had expired
  });

  it('keeps a blocked address blocked while the expired ones around it are dropped', () => {
    const throttle = sut(2, 1000);
    throttle.recordFailure('10.0.0.2');
    nowMs += 100;
    throttle.recordFailure('10.0.0.1');
    nowMs += 800;
    throttle.recordFailure('10.0.0.1'); // blocked until +1900
    nowMs += 600;
    throttle.recordFailure('10.0.0.3');
    expect(throttle.size).toBe(2); // 10.0.0.2's window is over; 10.0.0.1's block is not
    expect(throttle.retryAfterMs('10.0.0.1')).toBe(400);
  });
});

describe('clientKey', () => {
  it('keeps IPv4 addresses and unwraps IPv4-mapped IPv6', () => {
    expect(clientKey('203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::FFFF:127.0.0.1')).toBe('127.0.0.1');
  });

  it('groups IPv6 by /64, however the address is written', () => {
    const key = '2001:db8:0:1::/64';
    expect(clientKey('2001:db8:0:1::1')).toBe(key);
    expect(clientKey('2001:0db8:0000:0001:ffff:ffff:ffff:ffff')).toBe(key);
    expect(clientKey('2001:db8::1:0:0:0:5')).toBe(key);
    expect(clientKey('2001:db8:0:1:1:2:3.4.5.6')).toBe(key);
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('2001:db8:0:2::1')).not.toBe(key);
  });

  it('names an unknown peer', () => {
    expect(clientKey(undefined)).toBe('unknown');
    expect(clientKey('')).toBe('unknown');
  });
});
