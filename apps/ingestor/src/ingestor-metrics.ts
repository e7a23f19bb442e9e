import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '@tokenmeter/config';
import type { ChunkCommitted } from './usage-consumer';

/**
 * The ingestor's Prometheus metrics. Counted per committed chunk, from the outcomes the database
 * transaction reported, so a chunk that is retried after a failure is counted once, when it lands.
 */
export class IngestorMetrics {
  readonly registry = new Registry();
  private readonly events = new Counter({
    name: 'tokenmeter_ingest_events_total',
    help: 'Usage messages processed, by outcome: accepted (stored), duplicate (redelivery, ignored), conflict (event_id reused with another payload), rejected',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly rejected = new Counter({
    name: 'tokenmeter_ingest_rejected_total',
    help: 'Rejected messages by reason code (dead-lettered and kept in rejected_events)',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  private readonly unpriced = new Counter({
    name: 'tokenmeter_ingest_unpriced_total',
    help: 'Stored events with no price in force at occurred_at (priced later by reprice)',
    registers: [this.registry],
  });
  private readonly flagged = new Counter({
    name: 'tokenmeter_ingest_flagged_total',
    help: 'Stored events carrying at least one audit flag (e.g. exceeds_context_window)',
    registers: [this.registry],
  });
  private readonly lag = new Gauge({
    name: 'tokenmeter_ingest_consumer_lag_messages',
    help: "Messages left in the partition after the last committed chunk, as of that chunk's fetch",
    labelNames: ['topic', 'partition'] as const,
    registers: [this.registry],
  });
  private readonly batchSeconds = new Histogram({
    name: 'tokenmeter_ingest_batch_duration_seconds',
    help: 'Time to parse, price and store one chunk (one database transaction)',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly batchMessages = new Histogram({
    name: 'tokenmeter_ingest_batch_messages',
    help: 'Messages per stored chunk',
    buckets: [1, 10, 100, 500, 1000, 2500, 5000, 10000, 50000],
    registers: [this.registry],
  });

  private readonly lagPartitions = new Set<string>();

  /**
   * After a rebalance, forgets the lag of partitions this process no longer owns: their new
   * owner reports it, and a stale figure here would be summed into the total (several ingestor
   * processes share one metrics endpoint) or simply mislead.
   */
  retainPartitions(assignment: Record<string, number[]>): void {
    for (const key of [...this.lagPartitions]) {
      const [topic, partition] = key.split('\u0000');
      if (!(assignment[topic] ?? []).includes(Number(partition))) {
        this.lag.remove({ topic, partition });
        this.lagPartitions.delete(key);
      }
    }
  }

  /** `writePaths`: the repository's running counts of how chunks of events were written. */
  constructor(writePaths?: () => { bulk: number; setBased: number }) {
    collectDefaultMetrics({ register: this.registry, prefix: 'tokenmeter_ingestor_' });
    if (writePaths) {
      new Counter({
        name: 'tokenmeter_ingest_write_path_chunks_total',
        help: 'Chunks of new events by how they were written: bulk (COPY, all new) or set_based (the unique index refused the COPY: redeliveries, conflicts or a racing consumer). A rising set_based share means the consumer is re-reading stored events.',
        labelNames: ['path'] as const,
        registers: [this.registry],
        collect() {
          const counts = writePaths();
          this.reset();
          this.inc({ path: 'bulk' }, counts.bulk);
          this.inc({ path: 'set_based' }, counts.setBased);
        },
      });
    }
  }

  recordChunk(chunk: ChunkCommitted): void {
    const counts = { accepted: 0, duplicate: 0, conflict: 0, rejected: 0 };
    let unpriced = 0;
    let flagged = 0;
    for (const o of chunk.outcomes) {
      counts[o.status]++;
      if (o.status === 'accepted') {
        if (!o.priced) unpriced++;
        if (o.flags.length > 0) flagged++;
      } else if (o.status === 'rejected') {
        this.rejected.inc({ code: o.code });
      }
    }
    for (const [outcome, n] of Object.entries(counts)) if (n > 0) this.events.inc({ outcome }, n);
    if (unpriced > 0) this.unpriced.inc(unpriced);
    if (flagged > 0) this.flagged.inc(flagged);
    this.lag.set({ topic: chunk.topic, partition: String(chunk.partition) }, Number(chunk.lag > 0n ? chunk.lag : 0n));
    this.lagPartitions.add(`${chunk.topic}\u0000${chunk.partition}`);
    this.batchSeconds.observe(chunk.seconds);
    this.batchMessages.observe(chunk.messages);
  }
}

/**
 * A bare HTTP server for the scrape (the ingestor has no other HTTP surface). Failing to bind
 * (port taken, e.g. two ingestors on one host) is logged and ingestion goes on without metrics:
 * losing a scrape target must never stop billing data from flowing.
 */
export async function startMetricsServer(
  registry: { metrics(): Promise<string>; readonly contentType: string },
  port: number,
  log: Logger,
): Promise<Server | undefined> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' }).end(body),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    );
  });
  return new Promise((resolve) => {
    server.once('error', (err) => {
      log.warn({ err: err.message, port }, 'ingestor metrics endpoint not started');
      resolve(undefined);
    });
    server.listen(port, () => {
      log.info({ port: (server.address() as AddressInfo).port }, 'ingestor metrics on GET /metrics');
      resolve(server);
    });
  });
}
