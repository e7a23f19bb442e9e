import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Database } from '@tokenmeter/db';
import { aUsageEvent } from '../factories/usage-events';
import { dashboardQueries, queryProblems, shapeProblems, type Dashboard } from '../helpers/grafana-dashboard';
import { createTopics, produceRaw, testKafka, uniqueName, waitFor } from '../helpers/kafka';
import { freePort, startApp, stopApp, type AppProcess } from '../helpers/processes';
import { mergeExpositions, parseExposition, type Exposition } from '../helpers/prometheus-exposition';
import { parsePromQL } from '../helpers/promql';
import { openTestDatabase, resetDatabase, seedPriceBook, TEST_DATABASE_URL } from '../helpers/tokenmeter-db';

jest.setTimeout(180_000);

const DASHBOARD_FILE = path.resolve(__dirname, '../../deploy/grafana/tokenmeter.json');
const INGEST_TOKEN = 'grafana-dashboard-ingest-token-0123';

const readDashboard = (): Dashboard => JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8'));
/** The dashboard with one query's text edited, as a typo would. */
function withQueryEdited(find: string, replace: string): Dashboard {
  const text = readFileSync(DASHBOARD_FILE, 'utf8');
  const edited = text.replace(find, replace);
  if (edited === text) throw new Error(`"${find}" is not in the dashboard`);
  return JSON.parse(edited);
}

async function scrape(url: string): Promise<string | undefined> {
  const res = await fetch(url).catch(() => undefined);
  return res?.ok ? res.text() : undefined;
}

describe('deploy/grafana/tokenmeter.json against what the API and ingestor processes export', () => {
  let db: Database;
  let kafka: Kafka;
  const apps: AppProcess[] = [];
  let exported: Exposition;

  beforeAll(async () => {
    db = openTestDatabase();
    kafka = testKafka();
    await resetDatabase(db);
    await seedPriceBook(db);

    const topic = uniqueName('usage_grafana');
    await createTopics(kafka, [topic, `${topic}.dlq`], 2);
    const [apiPort, authorizePort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    const api = startApp('apps/api/src/main.ts', {
      DATABASE_URL: TEST_DATABASE_URL,
      PORT: String(apiPort),
      AUTHORIZE_PORT: String(authorizePort),
      TOKENMETER_INGEST_TOKEN: INGEST_TOKEN,
      LOG_LEVEL: 'warn',
    });
    const ingestor = startApp('apps/ingestor/src/main.ts', {
      DATABASE_URL: TEST_DATABASE_URL,
      KAFKA_USAGE_TOPIC: topic,
      KAFKA_GROUP_ID: uniqueName('group_grafana'),
      INGESTOR_METRICS_PORT: String(metricsPort),
      LOG_LEVEL: 'warn',
    });
    apps.push(api, ingestor);

    // Enough traffic for every labelled series the dashboard reads to have a sample (labels are
    // only visible on samples, and the dashboard names some values): a route, the authorize route
    // on both ports, an accepted, a conflicting and a rejected message (outcomes, a rejection code,
    // a partition's lag, the chunk histograms).
    const base = `http://127.0.0.1:${apiPort}`;
    await waitFor('API up', async () => (await fetch(`${base}/health/live`).catch(() => undefined))?.ok, 90_000);
    expect((await fetch(`${base}/v1/usage/summary`)).status).toBe(401);
    const authorize = { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' };
    expect((await fetch(`${base}/v1/spend/authorize`, authorize)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${authorizePort}/v1/spend/authorize`, authorize)).status).toBe(401);
    const event = aUsageEvent({ account_id: 'acct_grafana' });
    // Raw: the publisher would refuse the conflicting and the malformed message.
    await produceRaw(kafka, topic, [
      { key: event.account_id, value: JSON.stringify(event) },
      { key: event.account_id, value: JSON.stringify({ ...event, usage: { input_tokens: 1, output_tokens: 1 } }) },
      { key: 'acct_grafana', value: '{not json' },
    ]);
    const ingestorPage = await waitFor(
      'the three messages counted',
      async () => {
        const text = await scrape(`http://127.0.0.1:${metricsPort}/metrics`);
        const counted = ['accepted', 'conflict', 'rejected'].every((o) => text?.includes(`tokenmeter_ingest_events_total{outcome="${o}"} 1`));
        return counted ? text : undefined;
      },
      90_000,
      500,
    );
    const apiPage = await scrape(`${base}/metrics`);
    expect(apiPage).toContain('tokenmeter_authorize_port_request_duration_seconds_count{status_code="401"} 1');
    exported = mergeExpositions([parseExposition(apiPage!), parseExposition(ingestorPage)]);
  });

  afterAll(async () => {
    await Promise.all(apps.splice(0).map((a) => stopApp(a)));
    await db.close();
  });

  it('every query parses and asks only for series, labels and label values the services export', () => {
    const dashboard = readDashboard();
    expect(dashboardQueries(dashboard).length).toBeGreaterThanOrEqual(20);
    expect(queryProblems(dashboard, exported)).toEqual([]);
  });

  it('covers what the issue asks for: ingest rate, lag per partition, rejects by code, unpriced, chunk, HTTP route and authorize latency', () => {
    const metrics = new Set(dashboardQueries(readDashboard()).flatMap((q) => parsePromQL(q.expr).selectors.map((s) => s.metric)));
    for (const m of [
      'tokenmeter_ingest_events_total',
      'tokenmeter_ingest_consumer_lag_messages',
      'tokenmeter_ingest_rejected_total',
      'tokenmeter_ingest_unpriced_total',
      'tokenmeter_ingest_batch_duration_seconds_bucket',
      'tokenmeter_http_request_duration_seconds_bucket',
      'tokenmeter_authorize_port_request_duration_seconds_bucket',
    ]) {
      expect(metrics).toContain(m);
    }
  });

  it('imports into a stock Grafana: core panels, the one ${datasource} variable, a current schema version, no links out', () => {
    const dashboard = readDashboard();
    expect(shapeProblems(dashboard)).toEqual([]);
    // Grafana 12/13's classic model (apps/dashboard/pkg/migration/schemaversion: LATEST_VERSION 42).
    expect(dashboard.schemaVersion).toBe(42);
  });

  it('a query for a metric no service exports fails the check, as do the other typos it is there for', () => {
    const problemsOf = (find: string, replace: string) => queryProblems(withQueryEdited(find, replace), exported);
    expect(problemsOf('tokenmeter_ingest_rejected_total', 'tokenmeter_ingest_rejects_total')).toEqual([
      expect.stringContaining('tokenmeter_ingest_rejects_total is not exported by the services'),
    ]);
    // A histogram is queried through its _bucket series, never under its own name.
    expect(problemsOf('tokenmeter_ingest_batch_duration_seconds_bucket[$__range]', 'tokenmeter_ingest_batch_duration_seconds[$__range]')).toEqual([
      expect.stringContaining('tokenmeter_ingest_batch_duration_seconds is not exported by the services'),
    ]);
    expect(problemsOf('sum by (code)', 'sum by (reason)')).toEqual([expect.stringContaining('grouping label reason is on none of tokenmeter_ingest_rejected_total')]);
    expect(problemsOf('outcome=\\"conflict\\"', 'outcome=\\"conflicts\\"')).toEqual([
      expect.stringContaining('tokenmeter_ingest_events_total{outcome="conflicts"}: no such value among accepted, conflict, rejected'),
    ]);
    expect(problemsOf('route=\\"/v1/spend/authorize\\"', 'route=\\"/v1/spend/authorise\\"')).toEqual([
      expect.stringContaining('{route="/v1/spend/authorise"}: no such value'),
    ]);
    expect(problemsOf('max by (topic, partition) (tokenmeter_ingest_consumer_lag_messages)', 'rate(tokenmeter_ingest_consumer_lag_messages[5m])')).toEqual([
      expect.stringContaining('rate() of tokenmeter_ingest_consumer_lag_messages, a gauge'),
    ]);
    expect(problemsOf('sum(rate(tokenmeter_ingest_unpriced_total[$__rate_interval]))', 'sum(rate(tokenmeter_ingest_unpriced_total[$__rate_interval])')).toEqual([
      expect.stringContaining('syntax error'),
    ]);
    expect(problemsOf('[$__rate_interval]', '[$rate_interval]')).toEqual([expect.stringContaining('unknown variable $rate_interval')]);
  });
});
