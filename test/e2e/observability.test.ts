import { aUsageEvent } from '../factories/usage-events';
import { createTopics, produceRaw, publishUsage, testKafka, uniqueName, waitFor } from '../helpers/kafka';
import { freePort, startApp, stopApp, type AppProcess } from '../helpers/processes';
import { TEST_DATABASE_URL, useTestDatabase } from '../helpers/tokenmeter-db';

jest.setTimeout(180_000);

const ADMIN_SECRET = 'observability-admin-secret-0123456789';

/** JSON log lines of a process's output (other lines, e.g. Nest's, are skipped). */
function logLines(app: AppProcess): Record<string, unknown>[] {
  return app
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

describe('observability: request logs, request ids and metrics, API and ingestor processes', () => {
  useTestDatabase();
  const kafka = testKafka();
  const apps: AppProcess[] = [];

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => stopApp(a)));
  });

  it('API: one JSON line per request with its id, route, status and time; no secrets; latency by route on /metrics', async () => {
    const port = await freePort();
    const api = startApp('apps/api/src/main.ts', {
      DATABASE_URL: TEST_DATABASE_URL,
      PORT: String(port),
      AUTHORIZE_PORT: '0',
      LOG_LEVEL: 'info',
      TOKENMETER_ADMIN_KEY: ADMIN_SECRET,
    });
    apps.push(api);
    const base = `http://127.0.0.1:${port}`;
    await waitFor('API up', async () => (await fetch(`${base}/health/live`).catch(() => undefined))?.ok, 60_000);

    const auth = { authorization: `Bearer ${ADMIN_SECRET}` };
    const summary = await fetch(`${base}/v1/usage/summary?account_id=acct_obs&from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z`, {
      headers: { ...auth, 'x-request-id': 'gw-req-42' },
    });
    expect(summary.status).toBe(200);
    expect(summary.headers.get('x-request-id')).toBe('gw-req-42');
    const forged = await fetch(`${base}/v1/usage/events/evt_x?account_id=acct_obs`, { headers: { ...auth, 'x-request-id': 'bad id {with} spaces' } });
    expect(forged.status).toBe(404);
    const minted = forged.headers.get('x-request-id');
    expect(minted).toMatch(/^[0-9a-f-]{36}$/);
    expect((await fetch(`${base}/v1/usage/summary`)).status).toBe(401);

    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain;.*version=0\.0\.4/);
    const text = await metrics.text();
    expect(text).toContain('tokenmeter_http_request_duration_seconds_count{method="GET",route="/v1/usage/summary",status_code="200"} 1');
    expect(text).toContain('tokenmeter_http_request_duration_seconds_count{method="GET",route="/v1/usage/events/:event_id",status_code="404"} 1');
    expect(text).toContain('tokenmeter_http_request_duration_seconds_count{method="GET",route="/v1/usage/summary",status_code="401"} 1');

    await waitFor('request logs', async () => logLines(api).filter((l) => l.msg === 'request').length >= 3, 10_000);
    const requests = logLines(api).filter((l) => l.msg === 'request');
    expect(requests.find((l) => l.req_id === 'gw-req-42')).toMatchObject({
      method: 'GET',
      route: '/v1/usage/summary',
      path: '/v1/usage/summary',
      status: 200,
      ms: expect.any(Number),
      key_prefix: expect.stringMatching(/^tm_sha_[0-9a-f]{16}$/),
    });
    expect(requests.find((l) => l.req_id === minted)).toMatchObject({ route: '/v1/usage/events/:event_id', status: 404 });
    // Never the key, never the query string (account ids, filters).
    expect(api.output()).not.toContain(ADMIN_SECRET);
    expect(api.output()).not.toContain('account_id=acct_obs');
  });

  it('ingestor: counts outcomes, rejections by code, unpriced events, lag and batch latency on its own /metrics', async () => {
    const topic = uniqueName('usage_obs');
    await createTopics(kafka, [topic, `${topic}.dlq`], 2);
    const port = await freePort();
    const ingestor = startApp('apps/ingestor/src/main.ts', {
      DATABASE_URL: TEST_DATABASE_URL,
      KAFKA_USAGE_TOPIC: topic,
      KAFKA_GROUP_ID: uniqueName('group_obs'),
      INGESTOR_METRICS_PORT: String(port),
      LOG_LEVEL: 'warn',
    });
    apps.push(ingestor);

    const priced = Array.from({ length: 6 }, (_, i) => aUsageEvent({ account_id: `acct_obs_${i % 2}` }));
    await publishUsage(topic, [
      ...priced,
      priced[0], // redelivery
      aUsageEvent({ account_id: 'acct_obs_0', model: 'unpriced-model' }),
    ]);
    await produceRaw(kafka, topic, [{ key: 'acct_obs_1', value: '{not json' }]);

    const base = `http://127.0.0.1:${port}`;
    const scrape = async () => (await fetch(`${base}/metrics`).catch(() => undefined))?.text();
    const text = await waitFor(
      'all 9 messages counted',
      async () => {
        const t = await scrape();
        const counted = [...(t ?? '').matchAll(/^tokenmeter_ingest_events_total\{outcome="\w+"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
        return counted === 9 ? t : undefined;
      },
      90_000,
      500,
    );
    expect(text).toContain('tokenmeter_ingest_events_total{outcome="accepted"} 7');
    expect(text).toContain('tokenmeter_ingest_events_total{outcome="duplicate"} 1');
    expect(text).toContain('tokenmeter_ingest_events_total{outcome="rejected"} 1');
    expect(text).toContain('tokenmeter_ingest_rejected_total{code="invalid_json"} 1');
    expect(text).toContain('tokenmeter_ingest_unpriced_total 1');
    expect(text).toMatch(new RegExp(`tokenmeter_ingest_consumer_lag_messages\\{topic="${topic}",partition="\\d"\\} 0`));
    expect(text).toMatch(/tokenmeter_ingest_batch_duration_seconds_count [1-9]/);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });
});
