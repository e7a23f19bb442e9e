-- usage_daily: usage_hourly's measures per (account, api key, model, UTC day), so that the
-- dashboards read ~31 rows per (key, model) for a month and ~365 for a year instead of 744 and
-- 8,760 hour rows (libs/db/src/hourly-rollups.ts). The ingest transaction and reprice write it
-- with usage_hourly, from the same hour rows. `day` is the UTC midnight of the day.
--
-- Deploy with no old-version writer running (ingestor, HTTP ingest, reprice): a chunk committed by
-- old code after this backfill would be in usage_hourly but not here. The reconciliation report
-- shows such a gap (rollup_daily_* against rollup_*).

-- CreateTable
CREATE TABLE "usage_daily" (
    "account_id" TEXT COLLATE "C" NOT NULL,
    "api_key_id" TEXT COLLATE "C" NOT NULL,
    "model" TEXT COLLATE "C" NOT NULL,
    "day" TIMESTAMPTZ(3) NOT NULL,
    "requests" BIGINT NOT NULL,
    "unpriced_requests" BIGINT NOT NULL,
    "input_tokens" BIGINT NOT NULL,
    "output_tokens" BIGINT NOT NULL,
    "cache_read_tokens" BIGINT NOT NULL,
    "cache_write_tokens" BIGINT NOT NULL,
    "reasoning_tokens" BIGINT NOT NULL,
    "input_cost_usd" DECIMAL NOT NULL,
    "output_cost_usd" DECIMAL NOT NULL,
    "cache_read_cost_usd" DECIMAL NOT NULL,
    "cache_write_cost_usd" DECIMAL NOT NULL,
    "cost_usd" DECIMAL NOT NULL,

    CONSTRAINT "usage_daily_pkey" PRIMARY KEY ("account_id","api_key_id","model","day")
);

-- Keys compare byte-wise like usage_hourly's (20261129030000_c_collation_keys). Day rows are
-- updated in place by every chunk of the day, so leave room for HOT updates as usage_hourly does
-- (20261129022033_ingest_hot_path_indexes). Neither is expressible in schema.prisma.
ALTER TABLE "usage_daily" SET (fillfactor = 70);

-- Backfill from the hour rows: every measure is a sum, so a day is the sum of its hours.
INSERT INTO "usage_daily" ("account_id", "api_key_id", "model", "day", "requests", "unpriced_requests",
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
    "input_cost_usd", "output_cost_usd", "cache_read_cost_usd", "cache_write_cost_usd", "cost_usd")
SELECT "account_id", "api_key_id", "model", date_bin('1 day', "hour", TIMESTAMPTZ '2000-01-01 00:00:00+00'),
    sum("requests"), sum("unpriced_requests"), sum("input_tokens"), sum("output_tokens"), sum("cache_read_tokens"),
    sum("cache_write_tokens"), sum("reasoning_tokens"), sum("input_cost_usd"), sum("output_cost_usd"),
    sum("cache_read_cost_usd"), sum("cache_write_cost_usd"), sum("cost_usd")
FROM "usage_hourly"
GROUP BY 1, 2, 3, 4;

-- CreateIndex (after the backfill: one build instead of one insert per row)
CREATE INDEX "usage_daily_account_id_day_idx" ON "usage_daily"("account_id", "day");
