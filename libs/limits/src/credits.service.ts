import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import {
  allocateCredits,
  canonicalHash,
  ConflictError,
  costUnitsToString,
  CREDIT_CATEGORIES,
  grantCovers,
  NotFoundError,
  parseCostUnits,
  ValidationError,
  type CostUnits,
  type CreditCategory,
  type CreditPool,
} from '@tokenmeter/billing';
import type { Actor } from '@tokenmeter/auth';
import {
  AccountsRepository,
  AuditLogRepository,
  creditTermsOf,
  CreditGrantsRepository,
  CreditLedgerRepository,
  CreditUsageRepository,
  Transactor,
  type CreditGrantRecord,
  type CreditLedgerEntryRecord,
  type Queryable,
} from '@tokenmeter/db';

export interface NewCreditGrantInput {
  accountId: string;
  /** Exact decimal string, > 0, at most 22 decimals. */
  amountUsd: string;
  category: CreditCategory;
  effectiveAt: Date;
  expiresAt: Date | null;
  priority: number;
  /** Empty: every model. */
  models: string[];
  idempotencyKey: string;
}

/** What a grant is right now, for people: `usable` means it can pay for usage occurring now. */
export type CreditGrantState = 'usable' | 'scheduled' | 'expired' | 'voided' | 'pending_payment';

/** One grant with its balances (docs/credits.md, "Real-time balance"), exact decimal strings. */
export interface CreditGrantBalance {
  grant: CreditGrantRecord;
  state: CreditGrantState;
  /** The sum of its ledger entries. */
  ledgerBalanceUsd: string;
  /** What the account's uninvoiced usage draws on it (allocateCredits); the next invoice consumes it. */
  pendingUsd: string;
  /** ledger balance - pending: what is left to burn. */
  availableUsd: string;
}

export interface CreditBalances {
  accountId: string;
  asOf: Date;
  grants: CreditGrantBalance[];
  totals: {
    ledgerBalanceUsd: string;
    pendingUsd: string;
    availableUsd: string;
    /** Available on grants usable now (active, effective, not expired): what new usage can still burn. */
    usableUsd: string;
  };
}

/** A pool the authorize check keeps: the grant's terms and exactly what is left of it. */
export interface CreditPoolBalance extends CreditPool {
  status: CreditGrantRecord['status'];
}

export function newCreditGrantId(): string {
  return `cg_${randomBytes(12).toString('hex')}`;
}

const MAX_MODELS = 100;
/** Larger than any credit anyone sells, small enough that a typo of many zeros is refused. */
const MAX_GRANT_UNITS = parseCostUnits('1000000000', 'amount_usd');

/**
 * Credit grants, their ledger and their balances (docs/credits.md).
 *
 * A grant and its `grant` ledger entry (+amount) and its audit entry commit together. The account
 * row is locked for the creation, so two requests with one idempotency key are serialised: the
 * second finds the first's grant (same canonical body: the same grant, `created: false`; another
 * body: ConflictError, 409).
 *
 * Balances are computed, never stored: ledger balance (sum of entries) minus what allocateCredits
 * assigns from the account's uninvoiced usage (CreditUsageRepository.creditUsage), the same
 * allocation the invoice close makes over the usage it claims.
 */
@Injectable()
export class CreditsService {
  constructor(
    private readonly grants: CreditGrantsRepository,
    private readonly ledger: CreditLedgerRepository,
    private readonly usage: CreditUsageRepository,
    private readonly accounts: AccountsRepository,
    private readonly audit: AuditLogRepository,
    private readonly transactor: Transactor,
  ) {}

  private now(): Date {
    return new Date();
  }

  async createGrant(input: NewCreditGrantInput, actor: Actor): Promise<{ grant: CreditGrantBalance; created: boolean }> {
    const checked = checkedGrantInput(input);
    const requestHash = canonicalHash(canonicalBody(checked));
    const outcome = await this.transactor.run(async (q) => {
      if (!(await this.accounts.getAccount(checked.accountId, q, true))) throw new NotFoundError('account', checked.accountId);
      const existing = await this.grants.getGrantByIdempotencyKey(checked.accountId, checked.idempotencyKey, q);
      if (existing) {
        if (existing.requestHash !== requestHash) {
          throw new ConflictError(`idempotency_key ${checked.idempotencyKey} was used for another credit grant (${existing.id}) with a different body`);
        }
        return { grant: existing, created: false };
      }
      const grant = await this.grants.createGrant({ id: newCreditGrantId(), ...checked, requestHash, status: 'active' }, q);
      await this.ledger.append([{ accountId: grant.accountId, grantId: grant.id, kind: 'grant', amountUsd: grant.amountUsd }], q);
      await this.grants.notifyGrantsChanged(grant.accountId, q);
      await this.audit.append(
        { actorKeyId: actor.keyId, action: 'credit_grant.create', targetType: 'credit_grant', targetId: grant.id, before: null, after: grant, requestId: actor.requestId },
        q,
      );
      return { grant, created: true };
    });
    return { grant: await this.balanceOf(outcome.grant), created: outcome.created };
  }

  /**
   * Takes back what is left of a grant: a `void` entry of its AVAILABLE balance (ledger balance
   * minus what uninvoiced usage already draws on it), status voided, audited. The part uninvoiced
   * usage draws stays on the grant, so that usage remains covered: the next close consumes it.
   * A pending_payment grant has no entries: it is only marked voided. Voiding twice is a 409.
   */
  async voidGrant(id: string, actor: Actor): Promise<CreditGrantBalance> {
    const voided = await this.transactor.run(async (q) => {
      const before = await this.grants.getGrant(id, q, true);
      if (!before) throw new NotFoundError('credit_grant', id);
      if (before.status === 'voided') throw new ConflictError(`credit grant ${id} is already voided`);
      let voidedUsd = '0';
      if (before.status === 'active') {
        const balances = await this.computeBalances(before.accountId, this.now(), q);
        const mine = balances.grants.find((g) => g.grant.id === id)!;
        voidedUsd = mine.availableUsd;
        if (parseCostUnits(voidedUsd, 'available_usd') > 0n) {
          await this.ledger.append([{ accountId: before.accountId, grantId: id, kind: 'void', amountUsd: `-${voidedUsd}` }], q);
        }
      }
      const after = (await this.grants.moveStatus(id, before.status, 'voided', q))!;
      await this.grants.notifyGrantsChanged(after.accountId, q);
      await this.audit.append(
        {
          actorKeyId: actor.keyId,
          action: 'credit_grant.void',
          targetType: 'credit_grant',
          targetId: id,
          before,
          after: { ...after, voided_usd: voidedUsd },
          requestId: actor.requestId,
        },
        q,
      );
      return after;
    });
    return this.balanceOf(voided);
  }

  async getGrant(id: string): Promise<CreditGrantBalance> {
    const grant = await this.grants.getGrant(id);
    if (!grant) throw new NotFoundError('credit_grant', id);
    return this.balanceOf(grant);
  }

  /** Every grant of an account with its balances, and the totals (unknown account: NotFound). */
  async balances(accountId: string, now: Date = this.now()): Promise<CreditBalances> {
    if (!(await this.accounts.getAccount(accountId))) throw new NotFoundError('account', accountId);
    // One snapshot: ledger, grants and usage read together, so the balances add up exactly.
    return this.transactor.run((q) => this.computeBalances(accountId, now, q), { readOnly: true });
  }

  /** An account's ledger entries, newest first (unknown account: NotFound). */
  async listEntries(accountId: string, page: { beforeId?: string; limit: number }): Promise<CreditLedgerEntryRecord[]> {
    if (!(await this.accounts.getAccount(accountId))) throw new NotFoundError('account', accountId);
    return this.ledger.listEntries(accountId, page);
  }

  /**
   * What the authorize check keeps for an account (CreditState): every grant that can still pay
   * for usage from now on (active, not expired), with exactly what is left of it.
   */
  async poolsForAuthorize(accountId: string, now: Date = this.now()): Promise<CreditPoolBalance[]> {
    const balances = await this.transactor.run((q) => this.computeBalances(accountId, now, q), { readOnly: true });
    return balances.grants
      .filter((g) => g.grant.status === 'active' && (g.grant.expiresAt === null || g.grant.expiresAt.getTime() > now.getTime()))
      .map((g) => ({ ...creditTermsOf(g.grant), status: g.grant.status, availableUnits: parseCostUnits(g.availableUsd, 'available_usd') }));
  }

  private async balanceOf(grant: CreditGrantRecord): Promise<CreditGrantBalance> {
    const balances = await this.transactor.run((q) => this.computeBalances(grant.accountId, this.now(), q), { readOnly: true });
    return balances.grants.find((g) => g.grant.id === grant.id)!;
  }

  /**
   * The one allocation (docs/credits.md): pools are the grants that hold a positive ledger balance
   * and are not pending payment (voided and expired grants included: uninvoiced usage from before
   * the void or the expiry still draws on what they kept), over the uninvoiced usage.
   */
  private async computeBalances(accountId: string, now: Date, q: Queryable): Promise<CreditBalances> {
    const [grants, ledger] = await Promise.all([this.grants.listGrants(accountId, undefined, q), this.ledger.accountBalances(accountId, q)]);
    const ledgerUnits = new Map(grants.map((g) => [g.id, parseCostUnits(ledger.get(g.id) ?? '0', 'ledger_balance')]));
    const pools: CreditPool[] = grants
      .filter((g) => g.status !== 'pending_payment' && ledgerUnits.get(g.id)! > 0n)
      .map((g) => ({ ...creditTermsOf(g), availableUnits: ledgerUnits.get(g.id)! }));
    const usage = await this.usage.creditUsage(accountId, { grants: pools }, q);
    const { remaining } = allocateCredits(pools, usage);
    let ledgerTotal = 0n;
    let pendingTotal = 0n;
    let availableTotal = 0n;
    let usableTotal = 0n;
    const views = grants.map((grant): CreditGrantBalance => {
      const balance = ledgerUnits.get(grant.id)!;
      // Not a pool (pending payment, or nothing left on the ledger): nothing to burn, nothing pending.
      const available = remaining.get(grant.id) ?? 0n;
      const pending = remaining.has(grant.id) ? balance - available : 0n;
      const state = stateOf(grant, now);
      ledgerTotal += balance;
      pendingTotal += pending;
      availableTotal += available;
      if (state === 'usable') usableTotal += available;
      return { grant, state, ledgerBalanceUsd: costUnitsToString(balance), pendingUsd: costUnitsToString(pending), availableUsd: costUnitsToString(available) };
    });
    return {
      accountId,
      asOf: now,
      grants: views,
      totals: {
        ledgerBalanceUsd: costUnitsToString(ledgerTotal),
        pendingUsd: costUnitsToString(pendingTotal),
        availableUsd: costUnitsToString(availableTotal),
        usableUsd: costUnitsToString(usableTotal),
      },
    };
  }
}

function stateOf(g: CreditGrantRecord, now: Date): CreditGrantState {
  if (g.status === 'voided') return 'voided';
  if (g.status === 'pending_payment') return 'pending_payment';
  if (g.expiresAt !== null && now.getTime() >= g.expiresAt.getTime()) return 'expired';
  if (now.getTime() < g.effectiveAt.getTime()) return 'scheduled';
  return 'usable';
}

/** Units of the usable pools covering `model` at `at`: what a request can burn (the authorize check). */
export function coveringUnits(pools: readonly CreditPool[], at: Date, model: string): CostUnits {
  let units = 0n;
  for (const p of pools) if (grantCovers(p, at, model)) units += p.availableUnits;
  return units;
}

type CheckedGrant = Omit<NewCreditGrantInput, 'amountUsd'> & { amountUsd: string };

/** Canonical terms: exact amount text, models distinct and sorted. */
function checkedGrantInput(input: NewCreditGrantInput): CheckedGrant {
  const units = parseCostUnits(input.amountUsd, 'amount_usd');
  if (units <= 0n) throw new ValidationError('amount_usd', 'must be greater than 0');
  if (units > MAX_GRANT_UNITS) throw new ValidationError('amount_usd', `must be at most ${costUnitsToString(MAX_GRANT_UNITS)}`);
  if (!CREDIT_CATEGORIES.includes(input.category)) throw new ValidationError('category', `must be one of ${CREDIT_CATEGORIES.join(', ')}`);
  if (input.expiresAt !== null && input.expiresAt.getTime() <= input.effectiveAt.getTime()) {
    throw new ValidationError('expires_at', 'must be after effective_at');
  }
  const models = [...new Set(input.models)].sort();
  if (models.length > MAX_MODELS) throw new ValidationError('models', `at most ${MAX_MODELS} models`);
  if (!Number.isInteger(input.priority) || Math.abs(input.priority) > 1_000_000) throw new ValidationError('priority', 'must be a whole number in [-1000000, 1000000]');
  return { ...input, amountUsd: costUnitsToString(units), models };
}

/** The body the idempotency key binds (request_hash): the terms, not their spelling. */
function canonicalBody(g: CheckedGrant): unknown {
  return {
    amount_usd: g.amountUsd,
    category: g.category,
    effective_at: g.effectiveAt.toISOString(),
    expires_at: g.expiresAt?.toISOString() ?? null,
    priority: g.priority,
    models: g.models,
  };
}
