import { ValidationError } from './errors';
import type { CostUnits } from './cost-units';

/**
 * Credits (docs/credits.md): the pure part. Which grant pays for which usage, exactly, in cost
 * units (10^-22 USD), and in which order. The database keeps grants and their ledger; the invoice
 * close and the real-time balance both allocate with allocateCredits, so the balance the dashboard
 * and /v1/spend/authorize see is the one the invoice will apply.
 */
export const CREDIT_CATEGORIES = ['paid', 'promotional'] as const;
export type CreditCategory = (typeof CREDIT_CATEGORIES)[number];

export interface CreditGrantTerms {
  id: string;
  category: CreditCategory;
  /** Lower burns first. */
  priority: number;
  effectiveAt: Date;
  /** Exclusive; null: never expires. */
  expiresAt: Date | null;
  /** Models covered; empty: every model. */
  models: readonly string[];
  createdAt: Date;
}

/** A grant with what is left of it to burn. */
export interface CreditPool extends CreditGrantTerms {
  availableUnits: CostUnits;
}

/**
 * Usage at one instant: an event, or an hour of a model's rollup when no grant starts or ends
 * inside that hour (boundaryHours says which hours must come as events instead).
 */
export interface CreditUsage {
  at: Date;
  model: string;
  costUnits: CostUnits;
  /** 'YYYY-MM' the usage happened in (credit lines are per grant and service period). */
  servicePeriod: string;
}

export interface CreditAllocation {
  grantId: string;
  servicePeriod: string;
  units: CostUnits;
}

export interface CreditAllocationResult {
  /** Per (grant, service period), in burn order of first use; only non-zero. */
  allocations: CreditAllocation[];
  /** What is left of each pool afterwards. */
  remaining: Map<string, CostUnits>;
  /** Usage no grant covered: billed as usual. */
  uncoveredUnits: CostUnits;
}

const CATEGORY_ORDER: Record<CreditCategory, number> = { promotional: 0, paid: 1 };

/** The burn order: priority, then soonest expiry (never-expiring last), then promotional before paid, then oldest, then id. */
export function burnOrder(a: CreditGrantTerms, b: CreditGrantTerms): number {
  if (a.priority !== b.priority) return a.priority - b.priority;
  const ae = a.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY;
  const be = b.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY;
  if (ae !== be) return ae < be ? -1 : 1;
  if (a.category !== b.category) return CATEGORY_ORDER[a.category] - CATEGORY_ORDER[b.category];
  if (a.createdAt.getTime() !== b.createdAt.getTime()) return a.createdAt.getTime() - b.createdAt.getTime();
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Whether a grant pays for usage at `at` of `model`: effective_at <= at < expires_at, and the model in scope. */
export function grantCovers(grant: CreditGrantTerms, at: Date, model: string): boolean {
  const t = at.getTime();
  if (t < grant.effectiveAt.getTime()) return false;
  if (grant.expiresAt !== null && t >= grant.expiresAt.getTime()) return false;
  return grant.models.length === 0 || grant.models.includes(model);
}

/**
 * Burns usage against grants, oldest usage first; each piece of usage drains the grants that
 * cover it in burn order. Exact: a grant never goes below zero, and covered + uncovered = usage.
 */
export function allocateCredits(pools: readonly CreditPool[], usage: readonly CreditUsage[]): CreditAllocationResult {
  const ordered = [...pools].sort(burnOrder);
  const remaining = new Map<string, CostUnits>();
  for (const p of ordered) {
    if (p.availableUnits < 0n) throw new ValidationError('availableUnits', `grant ${p.id} has a negative balance`);
    remaining.set(p.id, p.availableUnits);
  }
  const byKey = new Map<string, CreditAllocation>();
  let uncoveredUnits = 0n;
  const chronological = [...usage].sort((a, b) => a.at.getTime() - b.at.getTime());
  for (const u of chronological) {
    if (u.costUnits < 0n) throw new ValidationError('costUnits', 'usage cost must not be negative');
    let left = u.costUnits;
    for (const p of ordered) {
      if (left === 0n) break;
      const available = remaining.get(p.id)!;
      if (available === 0n || !grantCovers(p, u.at, u.model)) continue;
      const take = available < left ? available : left;
      remaining.set(p.id, available - take);
      left -= take;
      const key = `${p.id}\u0000${u.servicePeriod}`;
      const a = byKey.get(key);
      if (a) a.units += take;
      else byKey.set(key, { grantId: p.id, servicePeriod: u.servicePeriod, units: take });
    }
    uncoveredUnits += left;
  }
  return { allocations: [...byKey.values()], remaining, uncoveredUnits };
}

const HOUR_MS = 3_600_000;

/**
 * The UTC hours some grant starts or ends inside (not on the hour): usage in these hours must be
 * allocated event by event, since part of the hour is covered and part is not. Every other hour
 * can be allocated as one piece from the hourly rollup. Epoch ms of each hour's start.
 */
export function boundaryHours(grants: readonly CreditGrantTerms[]): Set<number> {
  const hours = new Set<number>();
  for (const g of grants) {
    for (const edge of [g.effectiveAt, g.expiresAt]) {
      if (edge === null) continue;
      const t = edge.getTime();
      if (t % HOUR_MS !== 0) hours.add(Math.floor(t / HOUR_MS) * HOUR_MS);
    }
  }
  return hours;
}
