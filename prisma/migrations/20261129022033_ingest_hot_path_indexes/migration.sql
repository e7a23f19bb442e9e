-- DropIndex
DROP INDEX "usage_events_occurred_at_idx";

-- CreateIndex
CREATE INDEX "usage_events_occurred_at_idx" ON "usage_events" USING BRIN ("occurred_at");

-- Rollup rows are updated in place by every ingest chunk. Free space on each page lets Postgres
-- make those HOT updates (no new index entries), which is most of a rollup upsert's cost.
-- (A storage parameter: schema.prisma cannot express it and the drift check does not compare it.)
ALTER TABLE "usage_hourly" SET (fillfactor = 70);
