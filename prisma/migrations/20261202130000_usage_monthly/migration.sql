-- usage_monthly: usage_hourly's measures per (account, api key, model, UTC calendar month), so that
-- a year of dashboard summary reads ~12 rows per (key, model) plus the edge days and hours, instead
-- of ~365 day rows (libs/db/src/hourly-rollups.ts). The ingest transaction and reprice write it
-- with usage_hourly and usage_daily, from the same hour rows. `month` is the UTC midnight of the
-- month's first day.
--
-- Deploy with no old-version writer running (ingestor, HTTP ingest, reprice): a chunk committed by
-- old code after this backfill would be in usage_hourly and usage_daily but not here. The
-- reconciliation report shows such a gap (rollup_monthly_* against rollup_*).

-- CreateTable
CREATE TABLE "usage_monthly" (
    "account_id" TEXT COLLATE "C" NOT NULL,
    "api_key_id" TEXT COLLATE "C" NOT NULL,
    "model" TEXT COLLATE "C" NOT NULL,
    "month" TIMESTAMPTZ(3) NOT NULL,
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

    CONSTRAINT "usage_monthly_pkey" PRIMARY KEY ("account_id","api_key_id","model","month")
);

-- As usage_daily: byte-wise keys, and room for HOT updates (every chunk of the month updates its
-- rows in place). Neither is expressible in schema.prisma.
ALTER TABLE "usage_monthly" SET (fillfactor = 70);

-- Backfill from the day rows: every measure is a sum, so a month is the sum of its days. A UTC
-- month boundary is a UTC day boundary, so every day row falls in exactly one month.
INSERT INTO "usage_monthly" ("account_id", "api_key_id", "model", "month", "requests", "unpriced_requests",
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
    "input_cost_usd", "output_cost_usd", "cache_read_cost_usd", "cache_write_cost_usd", "cost_usd")
SELECT "account_id", "api_key_id", "model", date_trunc('month', "day", 'UTC'),
    sum("requests"), sum("unpriced_requests"), sum("input_tokens"), sum("output_tokens"), sum("cache_read_tokens"),
    sum("cache_write_tokens"), sum("reasoning_tokens"), sum("input_cost_usd"), sum("output_cost_usd"),
    sum("cache_read_cost_usd"), sum("cache_write_cost_usd"), sum("cost_usd")
FROM "usage_daily"
GROUP BY 1, 2, 3, 4;

-- CreateIndex (after the backfill: one build instead of one insert per row)
CREATE INDEX "usage_monthly_account_id_month_idx" ON "usage_monthly"("account_id", "month");
