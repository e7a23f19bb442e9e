-- usage_events becomes a table PARTITIONED BY RANGE (occurred_at), one partition per UTC month,
-- so that old months can be detached and dropped whole (npm run db:retention) and vacuum and index
-- work stay per month. Existing rows move into their months' partitions (one transaction: the
-- migration runner runs this file as one implicit transaction).
--
-- Postgres has no global index: a partitioned table's primary key and unique indexes must contain
-- the partition key, so PRIMARY KEY (event_id) cannot stay. event_id stays unique for all time in
-- usage_event_ids, a plain (unpartitioned) table keyed by event_id alone, written in the same
-- transaction as the event, and never touched by retention (docs/scaling.md, "event_id dedupe").
-- usage_events' key becomes (account_id, occurred_at, event_id): it takes the place of the
-- (account_id, occurred_at) index, so an event still costs two b-tree inserts and a BRIN one, as
-- before; the second b-tree is now usage_event_ids'.
--
-- Prisma's schema language cannot express partitioning; schema.prisma describes the parent.

ALTER TABLE "usage_events" RENAME TO "usage_events_unpartitioned";
ALTER INDEX "usage_events_pkey" RENAME TO "usage_events_unpartitioned_pkey";
ALTER INDEX "usage_events_account_id_occurred_at_idx" RENAME TO "usage_events_unpartitioned_account_id_occurred_at_idx";
ALTER INDEX "usage_events_occurred_at_idx" RENAME TO "usage_events_unpartitioned_occurred_at_idx";

-- LIKE keeps every column as it is: order, types, the COLLATE "C" keys, NOT NULLs, defaults.
CREATE TABLE "usage_events" (LIKE "usage_events_unpartitioned" INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMPRESSION)
  PARTITION BY RANGE ("occurred_at");
ALTER TABLE "usage_events" ADD CONSTRAINT "usage_events_pkey" PRIMARY KEY ("account_id", "occurred_at", "event_id");
CREATE INDEX "usage_events_occurred_at_idx" ON "usage_events" USING BRIN ("occurred_at");

CREATE TABLE "usage_event_ids" (
    "event_id" TEXT COLLATE "C" NOT NULL,
    "account_id" TEXT COLLATE "C" NOT NULL,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "payload_hash" TEXT NOT NULL,

    CONSTRAINT "usage_event_ids_pkey" PRIMARY KEY ("event_id")
);

-- The one place a month's partition is made, used by this migration, by the ingest write path
-- (UsageEventsRepository.recordBatch, for whatever month a chunk carries: late events of any past
-- month, and up to the 5 minutes of future skew the contract accepts) and by retention. Returns
-- 'exists', 'created' or 'reattached'.
--
-- - No DEFAULT partition: a late or early event gets its own month instead. A default partition
--   would make every new month's ATTACH scan it, would hide rows from retention by month, and
--   forbids DETACH ... CONCURRENTLY, which retention relies on.
-- - CREATE TABLE ... (LIKE) then ATTACH, not CREATE TABLE ... PARTITION OF: ATTACH takes only a
--   SHARE UPDATE EXCLUSIVE lock on usage_events, which ingest (ROW EXCLUSIVE) and readers do not
--   wait for; PARTITION OF takes ACCESS EXCLUSIVE, which would queue every ingest chunk and read
--   behind any long export. The new table is empty, so ATTACH's check scan and index builds are instant.
-- - One caller per month at a time (usage_events_lock_month, an advisory lock for the rest of the
--   transaction): two ingestors meeting the same new month would otherwise both CREATE it.
--   Retention takes the same lock while it drops a month.
-- - A table of the month's name that is not a partition is a month retention detached but has not
--   dropped (it found new events there, or stopped half way): it is attached back, rows and all,
--   never replaced by an empty one.
-- - lock_timeout: a caller never waits long for these locks; the ingestor retries a chunk that
--   failed with lock_not_available (55P03) after a back-off.
-- Month bounds are computed on timestamp (without time zone) in UTC: timestamptz + interval
-- '1 month' would follow the session's time zone.
CREATE FUNCTION "usage_events_lock_month"(at TIMESTAMPTZ) RETURNS VOID
LANGUAGE sql
AS $$
  SELECT pg_advisory_xact_lock(hashtext('usage_events partitions'),
    (EXTRACT(YEAR FROM at AT TIME ZONE 'UTC') * 12 + EXTRACT(MONTH FROM at AT TIME ZONE 'UTC') - 1)::INT)
$$;

CREATE FUNCTION "usage_events_ensure_partition"(at TIMESTAMPTZ) RETURNS TEXT
LANGUAGE plpgsql
SET lock_timeout = '10s'
AS $$
DECLARE
  month_start TIMESTAMP := date_trunc('month', at AT TIME ZONE 'UTC');
  part_name TEXT := 'usage_events_p' || to_char(month_start, 'YYYY_MM');
  lower_bound TEXT := to_char(month_start, 'YYYY-MM-DD HH24:MI:SS') || '+00';
  upper_bound TEXT := to_char(month_start + INTERVAL '1 month', 'YYYY-MM-DD HH24:MI:SS') || '+00';
  rel REGCLASS;
  pending BOOLEAN;
BEGIN
  PERFORM usage_events_lock_month(at);
  rel := to_regclass(quote_ident(part_name));
  IF rel IS NOT NULL THEN
    SELECT i.inhdetachpending INTO pending FROM pg_inherits i WHERE i.inhrelid = rel AND i.inhparent = 'usage_events'::REGCLASS;
    IF FOUND AND NOT pending THEN
      RETURN 'exists';
    END IF;
    IF FOUND THEN
      RAISE EXCEPTION 'partition % of usage_events is being detached (npm run db:retention); retry once it has finished', part_name
        USING ERRCODE = 'lock_not_available';
    END IF;
    EXECUTE format('ALTER TABLE usage_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part_name, lower_bound, upper_bound);
    RETURN 'reattached';
  END IF;
  EXECUTE format('CREATE TABLE %I (LIKE usage_events INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMPRESSION)', part_name);
  EXECUTE format('ALTER TABLE usage_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part_name, lower_bound, upper_bound);
  RETURN 'created';
END
$$;

-- Every month that has events, and the months around now (last month's late events, this month,
-- next month's first minutes within the future skew); ingest creates any other month it meets.
SELECT "usage_events_ensure_partition"(m)
FROM (
  SELECT DISTINCT date_trunc('month', "occurred_at", 'UTC') AS m FROM "usage_events_unpartitioned"
  UNION
  SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + d * INTERVAL '1 month') AT TIME ZONE 'UTC' FROM generate_series(-1, 1) AS d
) AS months
ORDER BY m;

INSERT INTO "usage_events" SELECT * FROM "usage_events_unpartitioned";
INSERT INTO "usage_event_ids" ("event_id", "account_id", "occurred_at", "payload_hash")
SELECT "event_id", "account_id", "occurred_at", "payload_hash" FROM "usage_events_unpartitioned";

DROP TABLE "usage_events_unpartitioned";
