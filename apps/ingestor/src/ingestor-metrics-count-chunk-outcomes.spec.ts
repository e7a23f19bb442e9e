import { IngestorMetrics } from './ingestor-metrics';

describe('ingestor metrics', () => {
  it('counts each outcome of a committed chunk, rejections by code, unpriced and lag per partition', async () => {
    const metrics = new IngestorMetrics();
    metrics.recordChunk({
      topic: 'gateway.usage.v1',
      partition: 3,
      messages: 5,
      rejected: 1,
      seconds: 0.042,
      lag: 120n,
      outcomes: [
        { status: 'accepted', eventId: 'a', priced: true, flags: [] },
        { status: 'accepted', eventId: 'b', priced: false, flags: ['exceeds_context_window'] },
        { status: 'duplicate', eventId: 'a' },
        { status: 'conflict', eventId: 'a', reason: 'different payload' },
        { status: 'rejected', eventId: null, code: 'schema', reason: 'occurred_at: invalid' },
      ],
    });
    const text = await metrics.registry.metrics();
    expect(text).toContain('tokenmeter_ingest_events_total{outcome="accepted"} 2');
    expect(text).toContain('tokenmeter_ingest_events_total{outcome="duplicate"} 1');
    expect(text).toContain('tokenmeter_ingest_events_total{outcome="conflict"} 1');
    expect(text).toContain('tokenmeter_ingest_events_total{outcome="rejected"} 1');
    expect(text).toContain('tokenmeter_ingest_rejected_total{code="schema"} 1');
    expect(text).toContain('tokenmeter_ingest_unpriced_total 1');
    expect(text).toContain('tokenmeter_ingest_flagged_total 1');
    expect(text).toContain('tokenmeter_ingest_consumer_lag_messages{topic="gateway.usage.v1",partition="3"} 120');
    expect(text).toContain('tokenmeter_ingest_batch_duration_seconds_bucket{le="0.05"} 1');
    expect(text).toContain('tokenmeter_ingest_batch_duration_seconds_count 1');
  });
});

describe('ingestor write-path metric', () => {
  it("reports the repository's running counts of bulk and set-based chunk writes", async () => {
    const paths = { bulk: 0, setBased: 0 };
    const metrics = new IngestorMetrics(() => paths);
    paths.bulk = 7;
    paths.setBased = 2;
    const text = await metrics.registry.metrics();
    expect(text).toContain('tokenmeter_ingest_write_path_chunks_total{path="bulk"} 7');
    expect(text).toContain('tokenmeter_ingest_write_path_chunks_total{path="set_based"} 2');
  });
});

describe('ingestor lag metric after a rebalance', () => {
  it('forgets the lag of partitions this process no longer owns', async () => {
    const metrics = new IngestorMetrics();
    for (const partition of [0, 1]) {
      metrics.recordChunk({ topic: 't', partition, messages: 1, rejected: 0, seconds: 0.01, lag: 50n, outcomes: [] });
    }
    metrics.retainPartitions({ t: [1, 2] });
    const text = await metrics.registry.metrics();
    expect(text).not.toContain('tokenmeter_ingest_consumer_lag_messages{topic="t",partition="0"}');
    expect(text).toContain('tokenmeter_ingest_consumer_lag_messages{topic="t",partition="1"} 50');
  });
});
