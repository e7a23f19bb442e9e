import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Pool, PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { costUnitsToString, type TokenCostUnits } from '@tokenmeter/billing';
import { hourlyRollups, type HourlyRollupRow } from './hourly-rollups';
import { isUniqueViolation, pgTransaction } from './transactor';

/** An event ready to store: validated, normalised, priced (or explicitly unpriced). */
export interface NewUsageEventRow {
  eventId: string;
  accountId: string;
  /** '' when the gateway sent no API key. */
  apiKeyId: string;
  model: string;
  requestId: string | null;
  occurredAt: Date;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  /** JSON text of the usage object as received. */
  usageRawJson: string;
  usageFormat: string;
  metadataJson: string | null;
  payloadHash: string;
  /** null: no price in force at occurredAt; all cost fields are then null too. */
  priceVersionId: string | null;
  /** The account override that changed the list price, if any. */
  priceOverrideId: string | null;
  /** Exact costs in 10^-22 USD (libs/billing cost-units.ts); null exactly when priceVersionId is null. */
  costs: TokenCostUnits | null;
  flags: string[];
  source: 'kafka' | 'http';
}

export interface RejectedEventRow {
  source: 'kafka' | 'http';
  topic: string | null;
  partition: number | null;
  offset: string | null;
  messageKey: string | null;
  eventId: string | null;
  rawPayload: string;
  reasonCode: string;
  reason: string;
}

/** How far a consumer has got on one partition, stored with the batch that got it there. */
export interface IngestProgressRow {
  topic: string;
  partition: number;
  nextOffset: string;
  maxOccurredAt: Date | null;
}

export type StoredOutcome = 'inserted' | 'duplicate' | 'conflict';

export interface RecordBatchInput {
  events: NewUsageEventRow[];
  rejected: RejectedEventRow[];
  progress: IngestProgressRow[];
}

/**
 * Writes usage events, rollups, rejections and consumer progress in ONE transaction, with a
 * constant number of statements per batch whatever its size (set-based, via unnest).
 */
export class UsageEventsRepository {
  /**
   * How chunks of events were written: `bulk` (COPY straight into usage_events, all new) or
   * `setBased` (after the unique index refused the COPY: redeliveries, conflicts, races).
   * A high setBased share means the consumer is re-reading already stored events.
   */
  readonly writePaths = { bulk: 0, setBased: 0 };

  constructor(private readonly pool: Pool) {}

  /** Returns one outcome per input event, in input order. */
  async recordBatch(input: RecordBatchInput): Promise<StoredOutcome[]> {
    return pgTransaction(this.pool, async (client) => {
      try {
        return { result: await this.recordInTransaction(client, input), commit: true };
      } catch (err) {
        // The transaction is about to roll back, taking with it any staging table it created:
        // the next transaction on this connection must check again.
        stagedClients.delete(client);
        throw err;
      }
    });
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
    }

    const storedHash = new Map<string, string>();
    for (const e of candidates) if (inserted.has(e.eventId)) storedHash.set(e.eventId, e.payloadHash);
    const notInserted = candidates.filter((e) => !inserted.has(e.eventId)).map((e) => e.eventId);
    if (notInserted.length > 0) {
      const { rows } = await client.query<{ event_id: string; payload_hash: string }>(
        'SELECT event_id, payload_hash FROM usage_events WHERE event_id = ANY($1::text[])',
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
   * usage_events (Postgres's bulk insert, the cheapest write there is) and add the chunk's
   * rollups, aggregated here, with one small upsert. If any event_id is already stored (a
   * redelivery, or another consumer racing us), the unique index refuses the COPY: the
   * savepoint undoes it and the caller takes the set-based path, which sorts out new rows from
   * duplicates and conflicts. Returns null in that case.
   */
  private async copyNewEvents(client: PoolClient, events: NewUsageEventRow[], pricedAt: string): Promise<Set<string> | null> {
    await client.query('SAVEPOINT copy_events');
    try {
      await copyRows(client, `COPY usage_events (${EVENT_COLUMNS}) FROM STDIN`, events, pricedAt);
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      await client.query('ROLLBACK TO SAVEPOINT copy_events');
      this.writePaths.setBased++;
      return null;
    }
    this.writePaths.bulk++;
    await ensureStagingTables(client);
    const rollups = hourlyRollups(events);
    await pipeline(Readable.from([toRollupCopyText(rollups)]), client.query(copyFrom('COPY usage_hourly_staging FROM STDIN')));
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
    await copyRows(client, `COPY usage_events_staging (${EVENT_COLUMNS}) FROM STDIN`, events, pricedAt);
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

/**
 * The per-connection temporary tables both write paths COPY into (emptied at every commit).
 * Created inside the chunk's transaction, so a rollback removes them: recordBatch then forgets
 * the connection here, and the next chunk creates them again (IF NOT EXISTS covers the case
 * where they had been committed earlier).
 */
async function ensureStagingTables(client: PoolClient): Promise<void> {
  if (stagedClients.has(client)) return;
  await client.query(STAGING_DDL);
  await client.query(ROLLUP_STAGING_DDL);
  stagedClients.add(client);
}

const ROLLUP_STAGING_DDL = `
CREATE TEMP TABLE IF NOT EXISTS usage_hourly_staging (
  account_id text COLLATE "C", api_key_id text COLLATE "C", model text COLLATE "C", hour timestamptz,
  requests bigint, unpriced_requests bigint, input_tokens bigint, output_tokens bigint, cache_read_tokens bigint,
  cache_write_tokens bigint, reasoning_tokens bigint, input_cost_usd numeric, output_cost_usd numeric,
  cache_read_cost_usd numeric, cache_write_cost_usd numeric, cost_usd numeric
) ON COMMIT DELETE ROWS`;

/** Rollup rows as COPY text, columns in usage_hourly_staging order. */
function toRollupCopyText(rows: HourlyRollupRow[]): string {
  let text = '';
  for (const r of rows) {
    text += `${copyField(r.account_id)}\t${copyField(r.api_key_id)}\t${copyField(r.model)}\t${r.hour}\t${r.requests}\t${r.unpriced_requests}\t${r.input_tokens}\t${r.output_tokens}\t${r.cache_read_tokens}\t${r.cache_write_tokens}\t${r.reasoning_tokens}\t${r.input_cost_usd}\t${r.output_cost_usd}\t${r.cache_read_cost_usd}\t${r.cache_write_cost_usd}\t${r.cost_usd}\n`;
  }
  return text;
}

const STAGING_DDL = `
CREATE TEMP TABLE IF NOT EXISTS usage_events_staging (
  event_id text COLLATE "C", account_id text COLLATE "C", api_key_id text COLLATE "C", model text COLLATE "C",
  request_id text, occurred_at timestamptz, input_tokens bigint, output_tokens bigint, cache_read_tokens bigint,
  cache_write_tokens bigint, reasoning_tokens bigint, usage_raw json, usage_format text, metadata json,
  payload_hash text, price_version_id bigint, input_cost_usd numeric, output_cost_usd numeric,
  cache_read_cost_usd numeric, cache_write_cost_usd numeric, cost_usd numeric, priced_at timestamptz, flags text[],
  source text, price_override_id bigint
) ON COMMIT DELETE ROWS`;

/** The columns both COPYs write, in the order toCopyText writes them. */
const EVENT_COLUMNS = `event_id, account_id, api_key_id, model, request_id, occurred_at,
  input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
  usage_raw, usage_format, metadata, payload_hash, price_version_id,
  input_cost_usd, output_cost_usd, cache_read_cost_usd, cache_write_cost_usd, cost_usd, priced_at, flags, source, price_override_id`;

async function copyRows(client: PoolClient, copySql: string, events: NewUsageEventRow[], pricedAt: string): Promise<void> {
  await pipeline(Readable.from([toCopyText(events, pricedAt)]), client.query(copyFrom(copySql)));
}

/** COPY text format: tab-separated, \N for NULL, backslash escapes for \\, tab, newline, CR. */
function copyField(v: string | number | null): string {
  if (v === null) return '\\N';
  if (typeof v === 'number') return String(v);
  return NEEDS_ESCAPE.test(v) ? v.replace(ESCAPES, (c) => ESCAPED[c]) : v;
}
const NEEDS_ESCAPE = /[\\\t\n\r]/;
const ESCAPES = /[\\\t\n\r]/g;
const ESCAPED: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** `pricedAt` (ISO text) is written for priced events; unpriced ones get NULL. */
function toCopyText(events: NewUsageEventRow[], pricedAt: string): string {
  const lines = new Array<string>(events.length);
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    const c = e.costs;
    lines[i] = [
      copyField(e.eventId),
      copyField(e.accountId),
      copyField(e.apiKeyId),
      copyField(e.model),
      copyField(e.requestId),
      e.occurredAt.toISOString(),
      e.inputTokens,
      e.outputTokens,
      e.cacheReadTokens,
      e.cacheWriteTokens,
      e.reasoningTokens,
      copyField(e.usageRawJson),
      copyField(e.usageFormat),
      copyField(e.metadataJson),
      e.payloadHash,
      copyField(e.priceVersionId),
      c === null ? '\\N' : costUnitsToString(c.input),
      c === null ? '\\N' : costUnitsToString(c.output),
      c === null ? '\\N' : costUnitsToString(c.cacheRead),
      c === null ? '\\N' : costUnitsToString(c.cacheWrite),
      c === null ? '\\N' : costUnitsToString(c.total),
      c === null ? '\\N' : pricedAt,
      // Flags come from a fixed vocabulary of [a-z_] words: a bare array literal is safe.
      `{${e.flags.join(',')}}`,
      e.source,
      copyField(e.priceOverrideId),
    ].join('\t');
  }
  return lines.join('\n') + '\n';
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

/** usage_hourly's columns, in usage_hourly_staging's order (toRollupCopyText writes them so). */
const ROLLUP_COLUMNS = `account_id, api_key_id, model, hour, requests, unpriced_requests,
  input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
  input_cost_usd, output_cost_usd, cache_read_cost_usd, cache_write_cost_usd, cost_usd`;

/** Rollups only ever grow by the rows just inserted; the same clause serves both write paths. */
const ROLLUP_CONFLICT_SQL = `ON CONFLICT (account_id, api_key_id, model, hour) DO UPDATE SET
    requests = h.requests + EXCLUDED.requests,
    unpriced_requests = h.unpriced_requests + EXCLUDED.unpriced_requests,
    input_tokens = h.input_tokens + EXCLUDED.input_tokens,
    output_tokens = h.output_tokens + EXCLUDED.output_tokens,
    cache_read_tokens = h.cache_read_tokens + EXCLUDED.cache_read_tokens,
    cache_write_tokens = h.cache_write_tokens + EXCLUDED.cache_write_tokens,
    reasoning_tokens = h.reasoning_tokens + EXCLUDED.reasoning_tokens,
    input_cost_usd = h.input_cost_usd + EXCLUDED.input_cost_usd,
    output_cost_usd = h.output_cost_usd + EXCLUDED.output_cost_usd,
    cache_read_cost_usd = h.cache_read_cost_usd + EXCLUDED.cache_read_cost_usd,
    cache_write_cost_usd = h.cache_write_cost_usd + EXCLUDED.cache_write_cost_usd,
    cost_usd = h.cost_usd + EXCLUDED.cost_usd`;

// Hours are truncated in UTC explicitly: date_trunc on timestamptz otherwise uses the session time zone.
// ORDER BY in the rollup insert keeps lock order stable across concurrent consumers.
const INSERT_EVENTS_SQL = `
WITH input AS (
  SELECT * FROM usage_events_staging
), ins AS (
  INSERT INTO usage_events (${EVENT_COLUMNS})
  SELECT ${EVENT_COLUMNS}
  FROM input
  ON CONFLICT (event_id) DO NOTHING
  RETURNING event_id, account_id, api_key_id, model, occurred_at, price_version_id,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
    input_cost_usd, output_cost_usd, cache_read_cost_usd, cache_write_cost_usd, cost_usd
), rollup AS (
  INSERT INTO usage_hourly AS h (${ROLLUP_COLUMNS})
  SELECT account_id, api_key_id, model, date_trunc('hour', occurred_at, 'UTC'),
    count(*), count(*) FILTER (WHERE price_version_id IS NULL),
    sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens), sum(reasoning_tokens),
    coalesce(sum(input_cost_usd), 0), coalesce(sum(output_cost_usd), 0), coalesce(sum(cache_read_cost_usd), 0),
    coalesce(sum(cache_write_cost_usd), 0), coalesce(sum(cost_usd), 0)
  FROM ins
  GROUP BY 1, 2, 3, 4
  ORDER BY 1, 2, 3, 4
  ${ROLLUP_CONFLICT_SQL}
)
SELECT event_id FROM ins`;

/** Adds a chunk's rollup rows (aggregated by hourlyRollups) to usage_hourly, in key order. */
const UPSERT_ROLLUPS_SQL = `
INSERT INTO usage_hourly AS h (${ROLLUP_COLUMNS})
SELECT ${ROLLUP_COLUMNS}
FROM usage_hourly_staging
ORDER BY account_id, api_key_id, model, hour
${ROLLUP_CONFLICT_SQL}`;
