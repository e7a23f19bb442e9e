import type { Pool, PoolClient } from 'pg';
import { addToBudgetWindows, lockBudgetsShared } from './budget-spend.repository';
import { notifyCreditUsage } from './credit-grants.repository';
import { ROLLUP_ADD_ON_CONFLICT_SQL, addHoursToCoarseRollupsSql, hourlyRollups, rollupOfEventsSql } from './hourly-rollups';
import { isUniqueViolation, pgTransaction } from './transactor';
import type { IngestProgressRow, NewUsageEventRow, RejectedEventRow, StoredOutcome } from './usage-event-rows';
import {
  EVENT_COPY_COLUMNS,
  EVENT_ID_COPY_COLUMNS,
  ROLLUP_COPY_COLUMNS,
  STAGING_DDL,
  copyInto,
  toEventCopyTexts,
  toRollupCopyText,
} from './usage-events.copy';
import { ensureEventPartitions, isMissingEventPartition } from './usage-event-partitions.repository';

export interface RecordBatchInput {
  events: NewUsageEventRow[];
  rejected: RejectedEventRow[];
  progress: IngestProgressRow[];
}

/**
 * Writes usage events, rollups, rejections and consumer progress in ONE transaction, with a
 * constant number of statements per batch whatever its size: events go in by COPY (straight into
 * usage_events when all are new, else through a staging table), the rest by unnest arrays.
 * The COPY codecs and the column lists are in usage-events.copy.ts and hourly-rollups.ts.
 *
 * usage_events is partitioned by UTC month of occurred_at, and event_id is unique for all time in
 * usage_event_ids (a primary key of a partitioned table must contain the partition key): every
 * new event is written to both, in the same transaction, and a redelivery is recognised there,
 * whether or not its month's raw events still exist (docs/scaling.md, "event_id dedupe").
 */
export class UsageEventsRepository {
  /**
   * How chunks of events were written: `bulk` (COPY straight into usage_events, all new) or
   * `setBased` (after the unique index refused the COPY: redeliveries, conflicts, races).
   * A high setBased share means the consumer is re-reading already stored events.
   */
  readonly writePaths = { bulk: 0, setBased: 0 };

  /** Until when the months around now are known to have partitions (see ensureMonthsAhead). */
  private monthsAheadUntilMs = 0;

  constructor(private readonly pool: Pool) {}

  /**
   * Returns one outcome per input event, in input order.
   *
   * Partitions: the months around now are made ahead (ensureMonthsAhead). Any other month a chunk
   * carries (a late event of any past month: the contract has no lower bound on occurred_at) costs
   * nothing until a row has no partition; Postgres then refuses the chunk, the months the chunk
   * carries are made, and the chunk runs again. A refusal is never passed on as the event's fault
   * (the ingestor would dead-letter it).
   */
  async recordBatch(input: RecordBatchInput): Promise<StoredOutcome[]> {
    await this.ensureMonthsAhead();
    for (let attempt = 1; ; attempt++) {
      try {
        return await pgTransaction(this.pool, async (client) => {
          try {
            return { result: await this.recordInTransaction(client, input), commit: true };
          } catch (err) {
            // The transaction is about to roll back, taking with it any staging table it created:
            // the next transaction on this connection must check again.
            stagedClients.delete(client);
            throw err;
          }
        });
      } catch (err) {
        // A second refusal means retention dropped the month in between: make it again.
        if (!isMissingEventPartition(err) || attempt === MAX_PARTITION_ATTEMPTS) throw err;
        await ensureEventPartitions(this.pool, input.events.map((e) => e.occurredAt));
      }
    }
  }

  /**
   * Last month (its late events), this month and next month (the 5 minutes of future skew the
   * contract accepts cross into it at the end of a month) always have partitions before a chunk is
   * written: checked when the process writes its first chunk and again when the clock enters a new
   * month, one comparison per chunk otherwise.
   */
  private async ensureMonthsAhead(): Promise<void> {
    const now = new Date();
    if (now.getTime() < this.monthsAheadUntilMs) return;
    const month = (offset: number) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
    await ensureEventPartitions(this.pool, [month(-1), month(0), month(1)]);
    this.monthsAheadUntilMs = month(1).getTime();
  }

  private async recordInTransaction(client: PoolClient, input: RecordBatchInput): Promise<StoredOutcome[]> {
    const { events } = input;
    // Within one batch the first occurrence of an event_id is the one we try to insert;
    // later occurrences are judged against whatever ends up stored, like any redelivery.
    const firstIndex = new Map<string, number>();
    const candidates: NewUsageEventRow[] = [];
    events.forEach((e, i) => {
      if (!firstIndex.has(e.eventId)) {
        firstIndex.set(e.eventId, i);
        candidates.push(e);
      }
    });

    // Inserting in event_id order means two concurrent writers with overlapping events wait on
    // each other in one direction only, instead of deadlocking on the unique index.
    candidates.sort((a, b) => (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0));
    let inserted = new Set<string>();
    if (candidates.length > 0) {
      const pricedAt = await this.ensureAccounts(client, candidates);
      inserted = (await this.copyNewEvents(client, candidates, pricedAt)) ?? (await this.insertEventsAndRollups(client, candidates, pricedAt));
      // Both paths leave exactly the rollup rows this chunk added in usage_hourly_staging: the day
      // and month rollups and budget windows move by the same exact sums, in this same transaction
      // (docs/limits.md).
      if (inserted.size > 0) {
        await client.query(ADD_CHUNK_TO_COARSE_ROLLUPS_SQL);
        await lockBudgetsShared(client);
        await addToBudgetWindows(client, 'usage_hourly_staging');
        // Credit balances are derived from the same rows (docs/credits.md): wake their listeners.
        await notifyCreditUsage(client, 'usage_hourly_staging');
      }
    }

    const storedHash = new Map<string, string>();
    for (const e of candidates) if (inserted.has(e.eventId)) storedHash.set(e.eventId, e.payloadHash);
    const notInserted = candidates.filter((e) => !inserted.has(e.eventId)).map((e) => e.eventId);
    if (notInserted.length > 0) {
      const { rows } = await client.query<{ event_id: string; payload_hash: string }>(
        'SELECT event_id, payload_hash FROM usage_event_ids WHERE event_id = ANY($1::text[])',
        [notInserted],
      );
      for (const r of rows) storedHash.set(r.event_id, r.payload_hash);
    }

    const outcomes: StoredOutcome[] = [];
    const conflicts: { event: NewUsageEventRow; existingHash: string }[] = [];
    events.forEach((e, i) => {
      if (firstIndex.get(e.eventId) === i && inserted.has(e.eventId)) {
        outcomes.push('inserted');
        return;
      }
      const existingHash = storedHash.get(e.eventId);
      if (existingHash === undefined) {
        // Cannot happen inside one transaction (ON CONFLICT DO NOTHING means the row exists);
        // fail loudly rather than report an event as stored when it is not.
        throw new Error(`event ${e.eventId} neither inserted nor found`);
      }
      if (existingHash === e.payloadHash) {
        outcomes.push('duplicate');
      } else {
        outcomes.push('conflict');
        conflicts.push({ event: e, existingHash });
      }
    });

    if (conflicts.length > 0) await this.insertConflicts(client, conflicts);
    if (input.rejected.length > 0) await this.insertRejected(client, input.rejected);
    if (input.progress.length > 0) await this.upsertProgress(client, input.progress);
    return outcomes;
  }

  /** Creates accounts seen for the first time; returns the transaction's timestamp (priced_at). */
  private async ensureAccounts(client: PoolClient, events: NewUsageEventRow[]): Promise<string> {
    // Sorted so that concurrent batches take row locks in the same order (no deadlocks).
    const ids = [...new Set(events.map((e) => e.accountId))].sort();
    const { rows } = await client.query<{ now: string }>(
      `WITH created AS (
         INSERT INTO accounts (id) SELECT id FROM unnest($1::text[]) AS t(id) ORDER BY id ON CONFLICT (id) DO NOTHING
       )
       SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS now`,
      [ids],
    );
    return rows[0].now;
  }

  /**
   * The fast path, for the usual chunk whose events are all new: COPY straight into
   * usage_event_ids and usage_events (Postgres's bulk insert, the cheapest write there is) and
   * add the chunk's rollups, aggregated here, with one small upsert. If any event_id is already
   * stored (a redelivery, or another consumer racing us), usage_event_ids' key refuses the first
   * COPY, before the wide rows are sent: the savepoint undoes it and the caller takes the
   * set-based path, which sorts out new rows from duplicates and conflicts. Returns null in that case.
   */
  private async copyNewEvents(client: PoolClient, events: NewUsageEventRow[], pricedAt: string): Promise<Set<string> | null> {
    await client.query('SAVEPOINT copy_events');
    try {
      const text = toEventCopyTexts(events, pricedAt);
      await copyInto(client, 'usage_event_ids', EVENT_ID_COPY_COLUMNS, text.ids);
      await copyInto(client, 'usage_events', EVENT_COPY_COLUMNS, text.events);
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      await client.query('ROLLBACK TO SAVEPOINT copy_events');
      this.writePaths.setBased++;
      return null;
    }
    this.writePaths.bulk++;
    await ensureStagingTables(client);
    await copyInto(client, 'usage_hourly_staging', ROLLUP_COPY_COLUMNS, toRollupCopyText(hourlyRollups(events)));
    await client.query(UPSERT_ROLLUPS_SQL);
    return new Set(events.map((e) => e.eventId));
  }

  /**
   * Inserts new events and adds exactly those rows to the hourly rollup in the same statement:
   * the rollup CTE reads the INSERT's RETURNING set, so duplicates can never be counted twice.
   */
  private async insertEventsAndRollups(client: PoolClient, events: NewUsageEventRow[], pricedAt: string): Promise<Set<string>> {
    // The chunk is COPY'd into a per-connection temporary table (emptied at commit), then moved
    // into usage_events and the rollups by one statement. COPY's text format is the cheapest way
    // into Postgres: cheaper than a jsonb parameter, far cheaper than node-pg array parameters.
    await ensureStagingTables(client);
    await copyInto(client, 'usage_events_staging', EVENT_COPY_COLUMNS, toEventCopyTexts(events, pricedAt).events);
    const { rows } = await client.query<{ event_id: string }>(INSERT_EVENTS_SQL);
    return new Set(rows.map((r) => r.event_id));
  }

  private async insertConflicts(
    client: PoolClient,
    conflicts: { event: NewUsageEventRow; existingHash: string }[],
  ): Promise<void> {
    await client.query(
      `INSERT INTO event_conflicts (event_id, existing_hash, payload_hash, raw_payload, source)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
       ON CONFLICT (event_id, payload_hash) DO NOTHING`,
      [
        conflicts.map((c) => c.event.eventId),
        conflicts.map((c) => c.existingHash),
        conflicts.map((c) => c.event.payloadHash),
        conflicts.map((c) => conflictPayload(c.event)),
        conflicts.map((c) => c.event.source),
      ],
    );
  }

  private async insertRejected(client: PoolClient, rejected: RejectedEventRow[]): Promise<void> {
    await client.query(
      `INSERT INTO rejected_events (source, topic, partition, "offset", message_key, event_id, raw_payload, reason_code, reason)
       SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
       ON CONFLICT (topic, partition, "offset") DO NOTHING`,
      [
        rejected.map((r) => r.source),
        rejected.map((r) => r.topic),
        rejected.map((r) => r.partition),
        rejected.map((r) => r.offset),
        rejected.map((r) => r.messageKey),
        rejected.map((r) => r.eventId),
        rejected.map((r) => stripNul(r.rawPayload)),
        rejected.map((r) => r.reasonCode),
        rejected.map((r) => r.reason),
      ],
    );
  }

  private async upsertProgress(client: PoolClient, progress: IngestProgressRow[]): Promise<void> {
    await client.query(
      `INSERT INTO ingest_progress (topic, partition, next_offset, max_occurred_at, updated_at)
       SELECT t.topic, t.partition, t.next_offset, t.max_occurred_at, now()
       FROM unnest($1::text[], $2::int[], $3::bigint[], $4::timestamptz[]) AS t(topic, partition, next_offset, max_occurred_at)
       ON CONFLICT (topic, partition) DO UPDATE SET
         next_offset = GREATEST(ingest_progress.next_offset, EXCLUDED.next_offset),
         max_occurred_at = GREATEST(ingest_progress.max_occurred_at, EXCLUDED.max_occurred_at),
         updated_at = now()`,
      [
        progress.map((p) => p.topic),
        progress.map((p) => p.partition),
        progress.map((p) => p.nextOffset),
        progress.map((p) => p.maxOccurredAt?.toISOString() ?? null),
      ],
    );
  }
}

/** Postgres text cannot hold NUL; the raw payload is evidence, so keep it visible rather than fail. */
function stripNul(s: string): string {
  return s.includes('\u0000') ? s.replace(/\u0000/g, '\\u0000') : s;
}

const stagedClients = new WeakSet<PoolClient>();

/** A chunk refused for a missing month is retried after making its months; twice covers a drop in between. */
const MAX_PARTITION_ATTEMPTS = 3;

/**
 * The per-connection temporary tables both write paths COPY into (emptied at every commit).
 * Created inside the chunk's transaction, so a rollback removes them: recordBatch then forgets
 * the connection here, and the next chunk creates them again (IF NOT EXISTS covers the case
 * where they had been committed earlier).
 */
async function ensureStagingTables(client: PoolClient): Promise<void> {
  if (stagedClients.has(client)) return;
  await client.query(STAGING_DDL);
  stagedClients.add(client);
}

function conflictPayload(e: NewUsageEventRow): string {
  return JSON.stringify({
    event_id: e.eventId,
    account_id: e.accountId,
    api_key_id: e.apiKeyId || null,
    model: e.model,
    request_id: e.requestId,
    occurred_at: e.occurredAt.toISOString(),
    usage: JSON.parse(e.usageRawJson),
    metadata: e.metadataJson === null ? null : JSON.parse(e.metadataJson),
  });
}

// The dedupe decides (`ids`: the event_ids new for all time), the events follow it. A concurrent
// writer of the same new event_id makes ON CONFLICT wait for its commit, then skip the row.
// ORDER BY in the rollup insert keeps lock order stable across concurrent consumers.
const INSERT_EVENTS_SQL = `
WITH ids AS (
  INSERT INTO usage_event_ids (${EVENT_ID_COPY_COLUMNS})
  SELECT ${EVENT_ID_COPY_COLUMNS}
  FROM usage_events_staging
  ON CONFLICT (event_id) DO NOTHING
  RETURNING event_id
), ins AS (
  INSERT INTO usage_events (${EVENT_COPY_COLUMNS})
  SELECT ${EVENT_COPY_COLUMNS}
  FROM usage_events_staging JOIN ids USING (event_id)
  RETURNING *
), rollup AS (
  INSERT INTO usage_hourly AS h (${ROLLUP_COPY_COLUMNS})
  ${rollupOfEventsSql('ins')}
  ${ROLLUP_ADD_ON_CONFLICT_SQL}
), staged AS (
  INSERT INTO usage_hourly_staging (${ROLLUP_COPY_COLUMNS})
  ${rollupOfEventsSql('ins', '')}
)
SELECT event_id FROM ins`;

/** Adds a chunk's rollup rows (aggregated by hourlyRollups) to usage_hourly, in key order. */
const UPSERT_ROLLUPS_SQL = `
INSERT INTO usage_hourly AS h (${ROLLUP_COPY_COLUMNS})
SELECT ${ROLLUP_COPY_COLUMNS}
FROM usage_hourly_staging
ORDER BY account_id, api_key_id, model, hour
${ROLLUP_ADD_ON_CONFLICT_SQL}`;

/** Adds the chunk's hour rows (usage_hourly_staging, both paths) to usage_daily and usage_monthly, after usage_hourly (one lock order). */
const ADD_CHUNK_TO_COARSE_ROLLUPS_SQL = addHoursToCoarseRollupsSql('usage_hourly_staging');
