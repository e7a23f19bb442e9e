-- An invoice's lines now go to Stripe in add_lines calls of up to 100 lines, which answer with
-- the invoice, not with one item id per line. What the push needs per line is only whether it is
-- on the Stripe invoice yet: stripe_pushed_at replaces stripe_invoice_item_id. Lines that already
-- have an item keep counting as pushed (their invoice's last update is the best time we have).

-- AlterTable
ALTER TABLE "invoice_lines" ADD COLUMN     "stripe_pushed_at" TIMESTAMPTZ(3);

UPDATE "invoice_lines" l SET "stripe_pushed_at" = i."updated_at"
FROM "invoices" i
WHERE i."id" = l."invoice_id" AND l."stripe_invoice_item_id" IS NOT NULL;

ALTER TABLE "invoice_lines" DROP COLUMN "stripe_invoice_item_id";
