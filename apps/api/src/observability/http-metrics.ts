import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/**
 * The API's Prometheus registry. One per application instance rather than prom-client's global
 * one, so several apps in one process (the e2e tests) do not collide on metric names.
 */
export class HttpMetrics {
  readonly registry = new Registry();
  private readonly duration = new Histogram({
    name: 'tokenmeter_http_request_duration_seconds',
    help: 'HTTP request latency by route template (e.g. /v1/usage/events/:event_id), method and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    // Dense below 100 ms, where the dashboard routes are expected to live (goal: p99 < 50 ms).
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  // The lean port (AUTHORIZE_PORT) is outside the Nest pipeline, so outside the histogram above.
  // Its own, without method and route (it serves one of each), with buckets down to 100 µs: a
  // check answered from memory takes well under a millisecond (docs/limits.md, "The lean port").
  private readonly authorizePortDuration = new Histogram({
    name: 'tokenmeter_authorize_port_request_duration_seconds',
    help: 'POST /v1/spend/authorize on the lean port (AUTHORIZE_PORT), by status code, from the request to the last byte handed to the socket (requests the client abandoned are not counted)',
    labelNames: ['status_code'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'tokenmeter_api_' });
  }

  observe(method: string, route: string, statusCode: number, seconds: number): void {
    this.duration.observe({ method, route, status_code: String(statusCode) }, seconds);
  }

  observeAuthorizePort(statusCode: number, seconds: number): void {
    this.authorizePortDuration.observe({ status_code: String(statusCode) }, seconds);
  }
}
