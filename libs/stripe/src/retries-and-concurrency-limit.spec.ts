import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { withRetries } from './retries';
import { isRetriableStripeError, SdkStripeGateway } from './sdk-stripe-gateway';

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

  describe('through the gateway', () => {
    // A stand-in for the Stripe API that answers every customer create after a delay and counts
    // the requests it holds open at once: the only way to see the gateway's own cap from outside.
    let server: Server;
    let inFlight = 0;
    let peak = 0;
    let served = 0;
    beforeAll(async () => {
      server = createServer((req, res) => {
        peak = Math.max(peak, ++inFlight);
        req.resume();
        setTimeout(() => {
          inFlight--;
          served++;
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ id: `cus_${served}`, object: 'customer', metadata: {} }));
        }, 15);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('keeps at most STRIPE_MAX_IN_FLIGHT requests in flight and queues the rest', async () => {
      const { port } = server.address() as AddressInfo;
      const gateway = new SdkStripeGateway({ apiKey: 'sk_test_limit', apiBase: `http://127.0.0.1:${port}`, webhookSecret: 'whsec_limit', maxInFlight: 3 });
      const created = await Promise.all(
        Array.from({ length: 12 }, (_, i) => gateway.createCustomer({ accountId: `acct_${i}`, name: null, email: null }, `cus-acct_${i}`)),
      );
      expect(new Set(created.map((c) => c.id)).size).toBe(12);
      expect(served).toBe(12);
      expect(peak).toBe(3);
      expect(gateway.requestCount).toBe(12);
    });
  });
});
