import { ValidationError } from './errors';
import type { CostUnits } from './cost-units';

/**
 * The credit alerts rule (docs/credits.md, "Credit alerts"), pure.
 *
 * `funded` is the account's available credits at its latest funding (a grant becoming active),
 * `available` what is left now, both exact cost units. A `low` alert is due for every threshold
 * with available <= funded x pct / 100, an `exhausted` alert (threshold 0) once available is 0.
 * Nothing is due while funded is 0 (an account that never had credits to spend). Each due alert is
 * recorded once per (account, funding, kind, threshold): the caller's unique key, not this function,
 * makes it exactly once, so a due alert already recorded is simply due again.
 */
export type CreditAlertKind = 'low' | 'exhausted';

export interface DueCreditAlert {
  kind: CreditAlertKind;
  /** Exact decimal text; '0' for exhausted. */
  thresholdPct: string;
}

const PCT_SCALE = 4;
const PCT_UNITS = 10n ** BigInt(PCT_SCALE);
const PCT_RE = /^(\d{1,3})(?:\.(\d{1,4}))?$/;

/** The percent as an integer of 10^-4 percent; refuses anything outside (0, 100) or with more than 4 decimals. */
function pctUnits(pct: string): bigint {
  const m = PCT_RE.exec(pct);
  if (!m) throw new ValidationError('credits_low_thresholds', `"${pct}" is not a percent such as 20 or 2.5 (at most 4 decimals)`);
  const units = BigInt(m[1]) * PCT_UNITS + BigInt((m[2] ?? '').padEnd(PCT_SCALE, '0'));
  if (units <= 0n || units >= 100n * PCT_UNITS) throw new ValidationError('credits_low_thresholds', `${pct} must be greater than 0 and less than 100`);
  return units;
}

function pctText(units: bigint): string {
  const whole = units / PCT_UNITS;
  const fraction = (units % PCT_UNITS).toString().padStart(PCT_SCALE, '0').replace(/0+$/, '');
  return fraction === '' ? whole.toString() : `${whole}.${fraction}`;
}

/**
 * "20,5" -> ['20', '5']: distinct, highest first, each in (0, 100), canonical text (trailing zeros
 * dropped, so "20.0" and "20" are one threshold). An empty list is allowed (only `exhausted` alerts).
 */
export function parseCreditLowThresholds(text: string): string[] {
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const units = [...new Set(items.map(pctUnits))].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
  return units.map(pctText);
}

/** The alerts due for `available` of `funded` (see the rule above); thresholds as parseCreditLowThresholds gives them. */
export function dueCreditAlerts(fundedUnits: CostUnits, availableUnits: CostUnits, thresholdsPct: readonly string[]): DueCreditAlert[] {
  if (fundedUnits <= 0n) return [];
  const due: DueCreditAlert[] = [];
  for (const pct of thresholdsPct) {
    // available <= funded x pct / 100, in integers: available x 100 x 10^4 <= funded x pct x 10^4.
    if (availableUnits * 100n * PCT_UNITS <= fundedUnits * pctUnits(pct)) due.push({ kind: 'low', thresholdPct: pctText(pctUnits(pct)) });
  }
  if (availableUnits <= 0n) due.push({ kind: 'exhausted', thresholdPct: '0' });
  return due;
}
