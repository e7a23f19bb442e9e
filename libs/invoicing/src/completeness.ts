import type { IngestProgressRepository } from '@tokenmeter/db';

/** Optional: Kafka high watermarks, to tell an idle partition from one that is behind. */
export interface IngestLagProbe {
  /** Next offset to be written per partition of the usage topic, as decimal strings. */
  highWatermarks(): Promise<Map<number, string>>;
}

export interface CompletenessReport {
  complete: boolean;
  requiredUntil: Date;
  lagging: { partition: string; maxOccurredAt: string | null }[];
}

/**
 * The close completeness rule. A period [start, end) may be closed when now >= end + grace and
 * every Kafka partition the ingestor has recorded progress for has either
 *   - stored an event with occurred_at >= end + grace (the gateway publishes roughly in time
 *     order, so nothing from the period is still queued behind it), or
 *   - no backlog at all: its committed next offset has reached the partition's high watermark
 *     (checked only when a lag probe is given; an idle partition never passes the first test).
 * HTTP ingest is synchronous (stored before the 202), so it adds nothing to wait for.
 */
export async function checkIngestionComplete(
  ingestProgress: IngestProgressRepository,
  periodEnd: Date,
  graceMinutes: number,
  now: Date,
  topic: string | undefined,
  probe?: IngestLagProbe,
): Promise<CompletenessReport> {
  const requiredUntil = new Date(periodEnd.getTime() + graceMinutes * 60_000);
  if (now < requiredUntil) {
    return { complete: false, requiredUntil, lagging: [{ partition: 'clock', maxOccurredAt: now.toISOString() }] };
  }
  const progress = await ingestProgress.listIngestProgress(topic);
  const behind = progress.filter((p) => !p.maxOccurredAt || p.maxOccurredAt < requiredUntil);
  let lagging = behind;
  if (behind.length > 0 && probe) {
    const marks = await probe.highWatermarks();
    // Read again after the high watermarks: a partition that caught up meanwhile counts as caught up.
    const nextOffsets = new Map((await ingestProgress.listIngestProgress(topic)).map((p) => [`${p.topic}/${p.partition}`, p.nextOffset]));
    lagging = behind.filter((p) => {
      const high = marks.get(p.partition);
      const next = nextOffsets.get(`${p.topic}/${p.partition}`);
      return high === undefined || next === undefined || BigInt(next) < BigInt(high);
    });
  }
  return {
    complete: lagging.length === 0,
    requiredUntil,
    lagging: lagging.map((p) => ({ partition: `${p.topic}/${p.partition}`, maxOccurredAt: p.maxOccurredAt?.toISOString() ?? null })),
  };
}
