import { ConcurrencyLimit, withRetries } from './limits';
import { isRetriableStripeError } from './sdk-stripe-gateway';

describe('Stripe call retries and the in-flight limit', () => {
  it('retries retriable failures with backoff, up to the attempt limit', async () => {
    const delays: number[] = [];
    let calls = 0;
    const result = await withRetries(
      async () => {
        if (++calls < 3) throw { type: 'StripeRateLimitError', statusCode: 429 };
        return 'ok';
      },
      isRetriableStripeError,
      { attempts: 5, baseDelayMs: 100, maxDelayMs: 1000 },
      async (ms) => void delays.push(ms),
    );
    expect(result).toBe('ok');
    expect(calls).toBe(3);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(delays[1]).toBeLessThanOrEqual(200);
  });

  it('does not retry a request Stripe refused (400) and gives up after the last attempt', async () => {
    let calls = 0;
    await expect(withRetries(async () => { calls++; throw { type: 'StripeInvalidRequestError', statusCode: 400 }; }, isRetriableStripeError, { attempts: 5, baseDelayMs: 0, maxDelayMs: 0 })).rejects.toMatchObject({ statusCode: 400 });
    expect(calls).toBe(1);
    calls = 0;
    await expect(withRetries(async () => { calls++; throw { type: 'StripeAPIError', statusCode: 503 }; }, isRetriableStripeError, { attempts: 3, baseDelayMs: 0, maxDelayMs: 0 })).rejects.toEqual({ type: 'StripeAPIError', statusCode: 503 });
    expect(calls).toBe(3);
  });

  it('keeps at most N calls in flight', async () => {
    const limit = new ConcurrencyLimit(3);
    let inFlight = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        limit.run(async () => {
          peak = Math.max(peak, ++inFlight);
          await new Promise((r) => setTimeout(r, 2));
          inFlight--;
        }),
      ),
    );
    expect(peak).toBe(3);
  });
});
