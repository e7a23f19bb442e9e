-- CreateTable
CREATE TABLE "accounts" (
    "id" TEXT NOT NULL,
    "name" TEXT,
    "email" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "accounts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "models" (
    "id" TEXT NOT NULL,
    "display_name" TEXT,
    "provider" TEXT,
    "context_window" INTEGER,
    "max_output_tokens" INTEGER,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "models_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "price_versions" (
    "id" BIGSERIAL NOT NULL,
    "model_id" TEXT NOT NULL,
    "effective_from" TIMESTAMPTZ(3) NOT NULL,
    "input_per_mtok" DECIMAL(20,10) NOT NULL,
    "output_per_mtok" DECIMAL(20,10) NOT NULL,
    "cache_read_per_mtok" DECIMAL(20,10) NOT NULL,
    "cache_write_per_mtok" DECIMAL(20,10),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "price_versions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "usage_events" (
    "event_id" TEXT NOT NULL,
    "account_id" TEXT NOT NULL,
    "api_key_id" TEXT NOT NULL DEFAULT '',
    "model" TEXT NOT NULL,
    "request_id" TEXT,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "input_tokens" BIGINT NOT NULL,
    "output_tokens" BIGINT NOT NULL,
    "cache_read_tokens" BIGINT NOT NULL,
    "cache_write_tokens" BIGINT NOT NULL,
    "reasoning_tokens" BIGINT NOT NULL,
    "usage_raw" JSON NOT NULL,
    "usage_format" TEXT NOT NULL,
    "metadata" JSON,
    "payload_hash" TEXT NOT NULL,
    "price_version_id" BIGINT,
    "input_cost_usd" DECIMAL(30,16),
    "output_cost_usd" DECIMAL(30,16),
    "cache_read_cost_usd" DECIMAL(30,16),
    "cache_write_cost_usd" DECIMAL(30,16),
    "cost_usd" DECIMAL(30,16),
    "priced_at" TIMESTAMPTZ(3),
    "flags" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "source" TEXT NOT NULL,
    "invoice_id" TEXT,

    CONSTRAINT "usage_events_pkey" PRIMARY KEY ("event_id")
);

-- CreateTable
CREATE TABLE "usage_hourly" (
    "account_id" TEXT NOT NULL,
    "api_key_id" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "hour" TIMESTAMPTZ(3) NOT NULL,
    "requests" BIGINT NOT NULL,
    "unpriced_requests" BIGINT NOT NULL,
    "input_tokens" BIGINT NOT NULL,
    "output_tokens" BIGINT NOT NULL,
    "cache_read_tokens" BIGINT NOT NULL,
    "cache_write_tokens" BIGINT NOT NULL,
    "reasoning_tokens" BIGINT NOT NULL,
    "input_cost_usd" DECIMAL(30,16) NOT NULL,
    "output_cost_usd" DECIMAL(30,16) NOT NULL,
    "cache_read_cost_usd" DECIMAL(30,16) NOT NULL,
    "cache_write_cost_usd" DECIMAL(30,16) NOT NULL,
    "cost_usd" DECIMAL(30,16) NOT NULL,

    CONSTRAINT "usage_hourly_pkey" PRIMARY KEY ("account_id","api_key_id","model","hour")
);

-- CreateTable
CREATE TABLE "rejected_events" (
    "id" BIGSERIAL NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "source" TEXT NOT NULL,
    "topic" TEXT,
    "partition" INTEGER,
    "offset" BIGINT,
    "message_key" TEXT,
    "event_id" TEXT,
    "raw_payload" TEXT NOT NULL,
    "reason_code" TEXT NOT NULL,
    "reason" TEXT NOT NULL,

    CONSTRAINT "rejected_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "event_conflicts" (
    "id" BIGSERIAL NOT NULL,
    "event_id" TEXT NOT NULL,
    "existing_hash" TEXT NOT NULL,
    "payload_hash" TEXT NOT NULL,
    "raw_payload" TEXT NOT NULL,
    "source" TEXT NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "event_conflicts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ingest_progress" (
    "topic" TEXT NOT NULL,
    "partition" INTEGER NOT NULL,
    "next_offset" BIGINT NOT NULL,
    "max_occurred_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ingest_progress_pkey" PRIMARY KEY ("topic","partition")
);

-- CreateIndex
CREATE UNIQUE INDEX "price_versions_model_id_effective_from_key" ON "price_versions"("model_id", "effective_from");

-- CreateIndex
CREATE INDEX "usage_events_account_id_occurred_at_idx" ON "usage_events"("account_id", "occurred_at");

-- CreateIndex
CREATE INDEX "usage_events_occurred_at_idx" ON "usage_events"("occurred_at");

-- CreateIndex
CREATE INDEX "usage_hourly_account_id_hour_idx" ON "usage_hourly"("account_id", "hour");

-- CreateIndex
CREATE INDEX "rejected_events_received_at_idx" ON "rejected_events"("received_at");

-- CreateIndex
CREATE UNIQUE INDEX "rejected_events_topic_partition_offset_key" ON "rejected_events"("topic", "partition", "offset");

-- CreateIndex
CREATE UNIQUE INDEX "event_conflicts_event_id_payload_hash_key" ON "event_conflicts"("event_id", "payload_hash");

-- AddForeignKey
ALTER TABLE "price_versions" ADD CONSTRAINT "price_versions_model_id_fkey" FOREIGN KEY ("model_id") REFERENCES "models"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
