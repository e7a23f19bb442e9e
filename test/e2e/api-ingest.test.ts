import type { NestExpressApplication } from '@nestjs/platform-express';
import { INGEST_TOKEN as TOKEN, startApi } from '../helpers/api-app';
import { aUsageEvent } from '../factories/usage-events';
import { totals, useTestDatabase } from '../helpers/tokenmeter-db';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('HTTP API: ingest and health', () => {
  let app: NestExpressApplication;
  let base: string;
  const db = useTestDatabase();

  const post = (body: unknown, token: string | null = TOKEN) =>
    fetch(`${base}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  beforeAll(async () => {
    ({ app, base } = await startApi());
  });
  afterAll(async () => {
    await app.close();
  });

  it('answers per event: accepted, duplicate, conflict or rejected with the reason', async () => {
    const a = aUsageEvent();
    const b = aUsageEvent({ model: 'not-priced-yet' });
    const res = await post({ events: [a, b, a, { ...a, usage: { input_tokens: 5, output_tokens: 5 } }, { ...aUsageEvent(), occurred_at: 'yesterday' }] });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Json;
    expect(body.results.map((r: { status: string }) => r.status)).toEqual(['accepted', 'accepted', 'duplicate', 'conflict', 'rejected']);
    expect(body.results[0]).toEqual({ index: 0, event_id: a.event_id, status: 'accepted', priced: true, flags: [] });
    expect(body.results[1]).toMatchObject({ status: 'accepted', priced: false });
    expect(body.results[4]).toMatchObject({ status: 'rejected', code: 'schema' });
    expect(body.results[4].reason).toMatch(/occurred_at/);
    expect(body.summary).toEqual({ accepted: 2, duplicate: 1, conflict: 1, rejected: 1 });

    // The very same path as Kafka: stored once, rollups equal raw events.
    const t = await totals(db);
    expect(t.raw).toMatchObject({ requests: '2', cost_usd: '0.00175997', unpriced: '1' });
    expect(t.rollup).toEqual(t.raw);
    const rejected = await db.pool.query('SELECT source, reason_code FROM rejected_events');
    expect(rejected.rows).toEqual([{ source: 'http', reason_code: 'schema' }]);
  });

  it('refuses a missing or wrong token with 401 in the one error shape', async () => {
    for (const token of [null, 'wrong-token-wrong-token']) {
      const res = await post({ events: [aUsageEvent()] }, token);
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: { code: 'unauthorized', message: 'missing or invalid ingest token', details: null } });
    }
    expect((await totals(db)).raw.requests).toBe('0');
  });

  it('answers 400 with a clear message for a body that is not a batch', async () => {
    const cases: [unknown, RegExp][] = [
      ['{oops', /not valid JSON/],
      [{ events: 'nope' }, /events: must be an array of events/],
      [{ events: [] }, /1 to 1000/],
      [{ events: Array.from({ length: 1001 }, () => aUsageEvent()) }, /1 to 1000/],
    ];
    for (const [body, message] of cases) {
      const res = await post(body);
      expect(res.status).toBe(400);
      const json = (await res.json()) as Json;
      expect(json.error.message).toMatch(message);
    }
  });

  it('accepts a full batch of 1000 events', async () => {
    const res = await post({ events: Array.from({ length: 1000 }, () => aUsageEvent()) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Json).summary.accepted).toBe(1000);
  });

  it('serves liveness, readiness and the OpenAPI document', async () => {
    expect((await fetch(`${base}/health/live`)).status).toBe(200);
    const ready = await fetch(`${base}/health/ready`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as Json).info).toMatchObject({ database: { status: 'up' }, kafka: { status: 'up' } });
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as Json;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/events', '/health/ready']));
  });
});
