import { z } from 'zod';
import { dateTime, LIST_RATES } from '../common/response-fields';

/** GET /v1/prices: the list price per model in force at `at`. */
export const PriceSchema = z
  .object({
    model: z.string(),
    price_version_id: z.string(),
    effective_from: dateTime,
    ...LIST_RATES,
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
