import type { IngestProgressRecord } from '@tokenmeter/db';

/** A partition's log end (high watermark) and start (low watermark), from the broker. */
export interface PartitionOffsets {
  partition: number;
  high: string;
  low: string;
}

/**
 * `complete_up_to`: the instant up to which all usage published to the usage topic has been
 * ingested. Per partition:
 *
 *  - caught up (the consumer's next offset, stored in ingest_progress with the batch that got it
 *    there, has reached the broker's high watermark, or the partition holds nothing): complete up
 *    to the moment the offsets were read (`checkedAt`);
 *  - behind: complete up to the latest occurred_at ingested from it (max_occurred_at), on the
 *    assumption that the gateway publishes a partition's events roughly in time order;
 *  - behind with nothing ingested yet: unknown (null).
 *
 * The answer is the minimum over partitions, null if any is unknown. Without the broker's offsets
 * (Kafka unreachable), the database alone cannot tell an idle partition from a lagging one, so
 * the fallback is the minimum of max_occurred_at: never later than the truth for in-order
 * partitions, but held back by a partition that has gone quiet.
 */
export function completeUpTo(
  progress: IngestProgressRecord[],
  offsets: PartitionOffsets[] | undefined,
  checkedAt: Date,
): Date | null {
  const byPartition = new Map(progress.map((p) => [p.partition, p]));
  let earliest: Date | null = null;
  const consider = (at: Date | null): boolean => {
    if (at === null) return false;
    if (earliest === null || at < earliest) earliest = at;
    return true;
  };
  if (offsets === undefined) {
    if (progress.length === 0) return null;
    for (const p of progress) if (!consider(p.maxOccurredAt)) return null;
    return earliest;
  }
  if (offsets.length === 0) return null;
  for (const o of offsets) {
    const p = byPartition.get(o.partition);
    const caughtUp = BigInt(o.high) <= BigInt(o.low) || (p !== undefined && BigInt(p.nextOffset) >= BigInt(o.high));
    if (!consider(caughtUp ? checkedAt : (p?.maxOccurredAt ?? null))) return null;
  }
  return earliest;
}
