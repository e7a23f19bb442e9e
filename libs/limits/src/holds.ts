import type { CostUnits } from '@tokenmeter/billing';

/** What an allowed request holds on its budgets until its usage event is stored (docs/limits.md, "Holds"). */
export interface Hold {
  accountId: string;
  requestId: string;
  units: CostUnits;
  /** The budgets it applied to when it was taken. */
  budgetIds: readonly string[];
  createdAtMs: number;
  expiresAtMs: number;
}

const keyOf = (accountId: string, requestId: string) => `${accountId}\n${requestId}`;

/**
 * The holds of requests in flight, in this process's memory, indexed three ways: by
 * (account, request_id) for idempotency, by budget for the check's sums, by account for
 * settlement (round robin within an account: a hold probed and kept is requeued to the end).
 * Every hold has the same TTL and holds are added in time order, so insertion order (of byKey and
 * byBudget) is expiry order: the first hold of a budget is its earliest to expire, and expiry stops
 * at the first live one.
 */
export class HoldBook {
  private readonly byKey = new Map<string, Hold>();
  private readonly byBudget = new Map<string, { units: CostUnits; holds: Set<Hold> }>();
  private readonly byAccount = new Map<string, Set<Hold>>();

  get size(): number {
    return this.byKey.size;
  }

  get(accountId: string, requestId: string): Hold | undefined {
    return this.byKey.get(keyOf(accountId, requestId));
  }

  add(hold: Hold): void {
    const key = keyOf(hold.accountId, hold.requestId);
    if (this.byKey.has(key)) throw new Error(`hold ${key} exists`);
    this.byKey.set(key, hold);
    for (const id of hold.budgetIds) {
      const entry = this.byBudget.get(id) ?? { units: 0n, holds: new Set<Hold>() };
      entry.units += hold.units;
      entry.holds.add(hold);
      this.byBudget.set(id, entry);
    }
    const ofAccount = this.byAccount.get(hold.accountId) ?? new Set<Hold>();
    ofAccount.add(hold);
    this.byAccount.set(hold.accountId, ofAccount);
  }

  release(hold: Hold): boolean {
    const key = keyOf(hold.accountId, hold.requestId);
    if (this.byKey.get(key) !== hold) return false;
    this.byKey.delete(key);
    for (const id of hold.budgetIds) {
      const entry = this.byBudget.get(id);
      if (entry === undefined) continue;
      entry.units -= hold.units;
      entry.holds.delete(hold);
      if (entry.holds.size === 0) this.byBudget.delete(id);
    }
    const ofAccount = this.byAccount.get(hold.accountId);
    ofAccount?.delete(hold);
    if (ofAccount?.size === 0) this.byAccount.delete(hold.accountId);
    return true;
  }

  unitsOn(budgetId: string): CostUnits {
    return this.byBudget.get(budgetId)?.units ?? 0n;
  }

  earliestExpiryOn(budgetId: string): number | null {
    const entry = this.byBudget.get(budgetId);
    if (entry === undefined) return null;
    for (const hold of entry.holds) return hold.expiresAtMs;
    return null;
  }

  hasHoldsOn(budgetId: string): boolean {
    return this.byBudget.has(budgetId);
  }

  /** The account's holds in settlement order: oldest first, except that a requeued hold goes last. */
  ofAccount(accountId: string): Iterable<Hold> {
    return this.byAccount.get(accountId) ?? [];
  }

  /** Moves a hold that was probed and stays to the end of its account's settlement order. */
  requeue(hold: Hold): void {
    const ofAccount = this.byAccount.get(hold.accountId);
    if (ofAccount === undefined || !ofAccount.delete(hold)) return;
    ofAccount.add(hold);
  }

  /** Up to `max` holds taken at or before `createdAtMs`, oldest first. */
  takenBy(createdAtMs: number, max: number): Hold[] {
    const found: Hold[] = [];
    for (const hold of this.byKey.values()) {
      if (hold.createdAtMs > createdAtMs || found.length >= max) break;
      found.push(hold);
    }
    return found;
  }

  /** Releases the holds whose TTL has passed; returns them. */
  expire(nowMs: number): Hold[] {
    const expired: Hold[] = [];
    for (const hold of this.byKey.values()) {
      if (hold.expiresAtMs > nowMs) break;
      expired.push(hold);
    }
    for (const hold of expired) this.release(hold);
    return expired;
  }
}
