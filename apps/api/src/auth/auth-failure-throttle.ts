import { isIPv4, isIPv6 } from 'node:net';
import type { Request, Response } from 'express';
import { ApiError } from '../common/api-error';

export interface AuthFailureThrottleOptions {
  /** Failed authentications an address may make in one window; the next request gets 429. */
  limit: number;
  windowMs: number;
  /** Addresses tracked at once; past it the oldest entry is dropped (bounded memory under a flood). */
  maxAddresses: number;
  /** Called once when an address reaches the limit (for a log line). */
  onBlock?: (client: string, failures: number) => void;
}

interface Entry {
  windowStartMs: number;
  failures: number;
  /** 0 while not blocked. */
  blockedUntilMs: number;
}

/**
 * Failed authentications (missing, unknown or revoked API key; wrong ingest token) per client
 * address. An address that fails `limit` times within a window is refused for a whole window from
 * its last failure: its requests get 429 with Retry-After before any key is looked up, so neither
 * guessing nor the database probes behind it continue. Successful requests are never counted or
 * delayed, and a blocked address does not affect any other.
 *
 * A successful request does not reset the count: otherwise one valid key would let its holder
 * guess other keys (or the ingest token) without limit. A 429 is not a failure either, so a client
 * that retries too early is not kept out longer than Retry-After says.
 *
 * Fixed windows, counted in this process (several API processes each count their own). Memory is
 * bounded by `maxAddresses` entries (~100 bytes each); entries are in window-start order, so expired
 * ones are dropped from the front as new failures arrive and, when full, the oldest goes first.
 */
export class AuthFailureThrottle {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly options: AuthFailureThrottleOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds until `address` may try to authenticate again; 0 if it may now. */
  retryAfterMs(address: string | undefined): number {
    const entry = this.entries.get(clientKey(address));
    if (!entry) return 0;
    return Math.max(0, entry.blockedUntilMs - this.now());
  }

  recordFailure(address: string | undefined): void {
    const client = clientKey(address);
    const nowMs = this.now();
    let entry = this.entries.get(client);
    if (!entry || this.expired(entry, nowMs)) {
      this.entries.delete(client);
      this.dropExpired(nowMs);
      if (this.entries.size >= this.options.maxAddresses) this.entries.delete(this.entries.keys().next().value!);
      entry = { windowStartMs: nowMs, failures: 0, blockedUntilMs: 0 };
      this.entries.set(client, entry);
    }
    entry.failures++;
    if (entry.failures === this.options.limit) {
      entry.blockedUntilMs = nowMs + this.options.windowMs;
      this.options.onBlock?.(client, entry.failures);
    }
  }

  /** Addresses tracked now (for tests of the memory bound). */
  get size(): number {
    return this.entries.size;
  }

  private expired(entry: Entry, nowMs: number): boolean {
    return nowMs - entry.windowStartMs >= this.options.windowMs && entry.blockedUntilMs <= nowMs;
  }

  /** Front entries are the oldest windows; stop at the first live one (amortised O(1) per failure). */
  private dropExpired(nowMs: number): void {
    for (const [client, entry] of this.entries) {
      if (!this.expired(entry, nowMs)) return;
      this.entries.delete(client);
    }
  }
}

/** Answers 429 (with Retry-After in seconds) if the request's address is blocked. */
export function refuseIfThrottled(throttle: AuthFailureThrottle, req: Request, res: Response): void {
  const ms = throttle.retryAfterMs(req.ip);
  if (ms === 0) return;
  const seconds = Math.ceil(ms / 1000);
  res.setHeader('Retry-After', String(seconds));
  throw new ApiError(429, 'too_many_requests', `too many failed authentications from this address; retry in ${seconds} s`, {
    retry_after_seconds: seconds,
  });
}

/**
 * The unit a limit applies to. IPv4 addresses as they are (IPv4-mapped IPv6 as IPv4); IPv6 by
 * /64, the block one subscriber or LAN gets, since anyone can use as many addresses inside it as
 * they like and would otherwise get a fresh limit per address.
 */
export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped && isIPv4(mapped[1])) return mapped[1];
  if (isIPv4(address)) return address;
  const bare = address.split('%')[0];
  if (!isIPv6(bare)) return address;
  return `${ipv6Groups(bare).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address, lower-case hex without leading zeros. */
function ipv6Groups(address: string): string[] {
  let text = address;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((g) => parseInt(g, 16).toString(16));
}
