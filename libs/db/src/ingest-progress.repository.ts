import type { Pool } from 'pg';

/** How far ingestion has got on one partition: next offset to consume and newest occurred_at stored. */
export interface IngestProgressRecord {
  topic: string;
  partition: number;
  nextOffset: string;
  maxOccurredAt: Date | null;
  updatedAt: Date;
}

/**
 * Reads ingest_progress: the per-partition high-water marks the consumer writes in the same
 * transaction as the events (UsageEventsRepository.recordBatch), so they never run ahead of what
 * is stored. complete_up_to (the API) and the close completeness rule (invoicing) both read it here.
 */
export class IngestProgressRepository {
  constructor(private readonly pool: Pool) {}

  /** Every partition of `topic` (undefined: of every topic), ordered by topic and partition. */
  async listIngestProgress(topic?: string): Promise<IngestProgressRecord[]> {
    const { rows } = await this.pool.query<IngestProgressRecord>(
      `SELECT topic, partition, next_offset::text AS "nextOffset", max_occurred_at AS "maxOccurredAt", updated_at AS "updatedAt"
       FROM ingest_progress WHERE ($1::text IS NULL OR topic = $1) ORDER BY topic, partition`,
      [topic ?? null],
    );
    return rows;
  }
}
