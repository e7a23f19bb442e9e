-- Identifiers are compared byte-wise (COLLATE "C"): they are opaque ids, not words, and
-- locale-aware comparison (strcoll) made every b-tree step on the ingest hot path (event_id
-- primary key, rollup keys, the per-chunk sort) several times slower. Prisma's schema language
-- cannot express column collations; the drift check does not compare them.
ALTER TABLE "usage_events"
  ALTER COLUMN "event_id" TYPE TEXT COLLATE "C",
  ALTER COLUMN "account_id" TYPE TEXT COLLATE "C",
  ALTER COLUMN "api_key_id" TYPE TEXT COLLATE "C",
  ALTER COLUMN "model" TYPE TEXT COLLATE "C";

ALTER TABLE "usage_hourly"
  ALTER COLUMN "account_id" TYPE TEXT COLLATE "C",
  ALTER COLUMN "api_key_id" TYPE TEXT COLLATE "C",
  ALTER COLUMN "model" TYPE TEXT COLLATE "C";

ALTER TABLE "accounts" ALTER COLUMN "id" TYPE TEXT COLLATE "C";
