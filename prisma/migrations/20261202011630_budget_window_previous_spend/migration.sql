-- AlterTable
ALTER TABLE "budget_windows" ADD COLUMN     "previous_spend_usd" DECIMAL NOT NULL DEFAULT 0;
