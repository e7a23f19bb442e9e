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
 * every partition of the usage topic has either
 *   - stored an event with occurred_at >= end + grace (the gateway publishes roughly in time
 *     order, so nothing from the period is still queued behind it), or
 *   - no backlog at all: its committed next offset has reached the partition's high watermark
 *     (checked only when a lag probe is given; an idle partition never passes the first test).
 * With a lag probe, a partition the broker lists with records but no ingest_progress row (never
 * ingested from) is lagging; without one only the partitions with progress rows can be judged.
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
  let lagging = behind.map((p) => ({ partition: `${p.topic}/${p.partition}`, maxOccurredAt: p.maxOccurredAt?.toISOString() ?? null }));
  if (probe) {
    const marks = await probe.highWatermarks();
    // Read again after the high watermarks: a partition that caught up meanwhile counts as caught up.
    const latest = await ingestProgress.listIngestProgress(topic);
    const nextOffsets = new Map(latest.map((p) => [`${p.topic}/${p.partition}`, p.nextOffset]));
    lagging = lagging.filter((p, i) => {
      const high = marks.get(behind[i].partition);
      const next = nextOffsets.get(p.partition);
      return high === undefined || next === undefined || BigInt(next) < BigInt(high);
    });
    // A partition the broker has and ingest_progress does not: nothing of it has been ingested
    // yet. Only the broker's list shows it (the topic's real partition count, which may exceed
    // the partitions that ever reported: 120 of them, few accounts, a slow first start).
    if (topic !== undefined) {
      const reported = new Set(latest.map((p) => p.partition));
      for (const [partition, high] of marks) {
        if (!reported.has(partition) && BigInt(high) > 0n) lagging.push({ partition: `${topic}/${partition}`, maxOccurredAt: null });
      }
    }
  }
  return { complete: lagging.length === 0, requiredUntil, lagging };
}
