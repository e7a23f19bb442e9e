-- AlterTable
ALTER TABLE "accounts" ADD COLUMN     "prepaid_only" BOOLEAN NOT NULL DEFAULT false;

-- CreateTable
CREATE TABLE "credit_grants" (
    "id" TEXT NOT NULL,
    "account_id" TEXT NOT NULL,
    "amount_usd" DECIMAL NOT NULL,
    "category" TEXT NOT NULL,
    "priority" INTEGER NOT NULL DEFAULT 0,
    "effective_at" TIMESTAMPTZ(3) NOT NULL,
    "expires_at" TIMESTAMPTZ(3),
    "models" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "idempotency_key" TEXT NOT NULL,
    "request_hash" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "stripe_invoice_id" TEXT,
    "voided_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "credit_grants_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "credit_ledger_entries" (
    "id" BIGSERIAL NOT NULL,
    "account_id" TEXT NOT NULL,
    "grant_id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "amount_usd" DECIMAL NOT NULL,
    "invoice_id" TEXT,
    "service_period" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "credit_ledger_entries_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "credit_grants_stripe_invoice_id_key" ON "credit_grants"("stripe_invoice_id");

-- CreateIndex
CREATE INDEX "credit_grants_account_id_idx" ON "credit_grants"("account_id");

-- CreateIndex
CREATE UNIQUE INDEX "credit_grants_account_id_idempotency_key_key" ON "credit_grants"("account_id", "idempotency_key");

-- CreateIndex
CREATE INDEX "credit_ledger_entries_account_id_id_idx" ON "credit_ledger_entries"("account_id", "id");

-- CreateIndex
CREATE INDEX "credit_ledger_entries_grant_id_idx" ON "credit_ledger_entries"("grant_id");

-- CreateIndex
CREATE INDEX "credit_ledger_entries_invoice_id_idx" ON "credit_ledger_entries"("invoice_id");

-- The credit ledger is append-only, like the audit log: corrections are new entries (reversal,
-- void), never edits. TRUNCATE (tests) does not fire row triggers.
CREATE FUNCTION credit_ledger_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'credit_ledger_entries is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER credit_ledger_append_only
  BEFORE UPDATE OR DELETE ON credit_ledger_entries
  FOR EACH ROW EXECUTE FUNCTION credit_ledger_append_only();
