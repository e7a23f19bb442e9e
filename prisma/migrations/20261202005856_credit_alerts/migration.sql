-- CreateTable
CREATE TABLE "credit_alerts" (
    "id" BIGSERIAL NOT NULL,
    "account_id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "funding_grant_id" TEXT NOT NULL,
    "threshold_pct" DECIMAL(7,4) NOT NULL,
    "available_usd" DECIMAL NOT NULL,
    "funded_usd" DECIMAL NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "published_at" TIMESTAMPTZ(3),

    CONSTRAINT "credit_alerts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "credit_alert_fundings" (
    "funding_grant_id" TEXT NOT NULL,
    "account_id" TEXT NOT NULL,
    "funded_usd" DECIMAL NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "credit_alert_fundings_pkey" PRIMARY KEY ("funding_grant_id")
);

-- CreateIndex
CREATE INDEX "credit_alerts_published_at_id_idx" ON "credit_alerts"("published_at", "id");

-- CreateIndex
CREATE UNIQUE INDEX "credit_alerts_account_id_funding_grant_id_kind_threshold_pc_key" ON "credit_alerts"("account_id", "funding_grant_id", "kind", "threshold_pct");
