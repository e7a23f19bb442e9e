import { Prisma } from './generated/prisma/client';

// Conversions between Prisma's values and the repositories' records, which keep the shapes the pg
// statements gave them: decimals and BIGINT ids as exact strings, timestamps as Date.

/**
 * A NUMERIC(p, scale) column as pg prints it (`3.0000000000`): fixed-point with the column's
 * scale, never the exponent form Decimal#toString uses for small values (`1e-8`).
 */
export function decimalText(value: Prisma.Decimal, scale: number): string {
  return value.toFixed(scale);
}

/** Every per-million-token rate column (price_versions, account_price_overrides) is NUMERIC(20, 10). */
export const RATE_SCALE = 10;

export function decimalTextOrNull(value: Prisma.Decimal | null, scale: number): string | null {
  return value === null ? null : value.toFixed(scale);
}

/**
 * A nullable jsonb column's input: SQL NULL (Prisma.DbNull) for null and undefined, never the JSON
 * literal `null` (Prisma.JsonNull), which `before IS NULL` would not find. Any other value is
 * stored as JSON.stringify writes it (Dates as ISO strings, toJSON honoured), as before.
 */
export function jsonOrDbNull(value: unknown): Prisma.InputJsonValue | typeof Prisma.DbNull {
  if (value === undefined || value === null) return Prisma.DbNull;
  return JSON.parse(JSON.stringify(value)) as Prisma.InputJsonValue;
}
