import { z } from 'zod';
import { dateTime, ratePerMTok } from '../common/response-fields';

/** GET /v1/prices: the list price per model in force at `at`. */
export const PriceSchema = z
  .object({
    model: z.string(),
    price_version_id: z.string(),
    effective_from: dateTime,
    input_per_mtok: ratePerMTok,
    output_per_mtok: ratePerMTok,
    cache_read_per_mtok: ratePerMTok,
    cache_write_per_mtok: ratePerMTok.nullable().describe('null: cache writes are charged at the input rate'),
  })
  .strict();
export type PriceJson = z.input<typeof PriceSchema>;

export const PricesSchema = z
  .object({
    at: dateTime,
    prices: z.array(PriceSchema).describe('Models with a price in force at `at` (a model priced only later is absent)'),
  })
  .strict();
export type PricesJson = z.input<typeof PricesSchema>;
