-- Costs become 22 decimal places wide: tokens x rate (10 dp) / 1e6 needs 16, and an account
-- discount of up to 4 decimal places of a percent multiplies by a factor with 6 more. Stored
-- costs stay exact, so rollups and invoices add exact values (nothing rounds before the invoice line).

-- AlterTable
ALTER TABLE "invoice_lines" ALTER COLUMN "amount_exact_usd" SET DATA TYPE DECIMAL(38,22);

-- AlterTable
ALTER TABLE "invoices" ALTER COLUMN "total_exact_usd" SET DATA TYPE DECIMAL(38,22);

-- AlterTable
ALTER TABLE "usage_events" ALTER COLUMN "input_cost_usd" SET DATA TYPE DECIMAL(38,22),
ALTER COLUMN "output_cost_usd" SET DATA TYPE DECIMAL(38,22),
ALTER COLUMN "cache_read_cost_usd" SET DATA TYPE DECIMAL(38,22),
ALTER COLUMN "cache_write_cost_usd" SET DATA TYPE DECIMAL(38,22),
ALTER COLUMN "cost_usd" SET DATA TYPE DECIMAL(38,22);

-- AlterTable
ALTER TABLE "usage_hourly" ALTER COLUMN "input_cost_usd" SET DATA TYPE DECIMAL(38,22),
ALTER COLUMN "output_cost_usd" SET DATA TYPE DECIMAL(38,22),
ALTER COLUMN "cache_read_cost_usd" SET DATA TYPE DECIMAL(38,22),
ALTER COLUMN "cache_write_cost_usd" SET DATA TYPE DECIMAL(38,22),
ALTER COLUMN "cost_usd" SET DATA TYPE DECIMAL(38,22);
