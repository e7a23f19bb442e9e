import type { Pool } from 'pg';
import type { Queryable } from './transactor';

/**
 * credit_ledger_entries (docs/credits.md, "Model"): append-only (a trigger refuses UPDATE and
 * DELETE). A grant's ledger balance is the exact sum of its entries' signed amounts. Set-based pg:
 * entries are appended in batches (a close writes one per credit line) and summed in SQL.
 */
export const CREDIT_ENTRY_KINDS = ['grant', 'consumption', 'reversal', 'expiry', 'void'] as const;
export type CreditEntryKind = (typeof CREDIT_ENTRY_KINDS)[number];

export interface NewCreditLedgerEntry {
  accountId: string;
  grantId: string;
  kind: CreditEntryKind;
  /** Signed exact decimal: + for grant and reversal, - for consumption, expiry and void. */
  amountUsd: string;
  invoiceId?: string | null;
  servicePeriod?: string | null;
}

export interface CreditLedgerEntryRecord {
  id: string;
  accountId: string;
  grantId: string;
  kind: CreditEntryKind;
  amountUsd: string;
  invoiceId: string | null;
  servicePeriod: string | null;
  createdAt: Date;
}

const SIGN: Record<CreditEntryKind, 1 | -1> = { grant: 1, reversal: 1, consumption: -1, expiry: -1, void: -1 };

export class CreditLedgerRepository {
  constructor(private readonly pool: Pool) {}

  /**
   * Appends entries in the caller's transaction, in the given order (ids ascending). Refuses an
   * amount whose sign does not match its kind (a zero amount is refused too: an entry is a movement).
   */
  async append(entries: readonly NewCreditLedgerEntry[], q: Queryable = this.pool): Promise<CreditLedgerEntryRecord[]> {
    if (entries.length === 0) return [];
    for (const e of entries) {
      const negative = e.amountUsd.trim().startsWith('-');
      if (/^-?0*(\.0*)?$/.test(e.amountUsd.trim()) || negative !== (SIGN[e.kind] < 0)) {
        throw new Error(`a ${e.kind} ledger entry must be ${SIGN[e.kind] > 0 ? 'positive' : 'negative'}, not ${e.amountUsd}`);
      }
    }
    const { rows } = await q.query(
      `INSERT INTO credit_ledger_entries (account_id, grant_id, kind, amount_usd, invoice_id, service_period)
       SELECT account_id, grant_id, kind, amount_usd, invoice_id, service_period FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $5::text[], $6::text[]) WITH ORDINALITY
         AS t(account_id, grant_id, kind, amount_usd, invoice_id, service_period, n)
       ORDER BY n
       RETURNING ${ENTRY_COLUMNS}`,
      [
        entries.map((e) => e.accountId),
        entries.map((e) => e.grantId),
        entries.map((e) => e.kind),
        entries.map((e) => e.amountUsd),
        entries.map((e) => e.invoiceId ?? null),
        entries.map((e) => e.servicePeriod ?? null),
      ],
    );
    return rows.map(entryOf).sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
  }

  /** Ledger balance per grant (exact decimal strings); grants without entries are absent. */
  async balances(grantIds: readonly string[], q: Queryable = this.pool): Promise<Map<string, string>> {
    if (grantIds.length === 0) return new Map();
    const { rows } = await q.query<{ grant_id: string; balance: string }>(
      `SELECT grant_id, trim_scale(sum(amount_usd))::text AS balance FROM credit_ledger_entries
       WHERE grant_id = ANY($1::text[]) GROUP BY grant_id`,
      [grantIds],
    );
    return new Map(rows.map((r) => [r.grant_id, r.balance]));
  }

  /** Ledger balance per grant of every grant of an account that has entries. */
  async accountBalances(accountId: string, q: Queryable = this.pool): Promise<Map<string, string>> {
    const { rows } = await q.query<{ grant_id: string; balance: string }>(
      `SELECT grant_id, trim_scale(sum(amount_usd))::text AS balance FROM credit_ledger_entries
       WHERE account_id = $1 GROUP BY grant_id`,
      [accountId],
    );
    return new Map(rows.map((r) => [r.grant_id, r.balance]));
  }

  /** An account's entries, newest first, keyset-paginated by id (`beforeId`: the previous page's last id). */
  async listEntries(accountId: string, page: { beforeId?: string; limit: number }, q: Queryable = this.pool): Promise<CreditLedgerEntryRecord[]> {
    const { rows } = await q.query(
      `SELECT ${ENTRY_COLUMNS} FROM credit_ledger_entries
       WHERE account_id = $1 AND ($2::bigint IS NULL OR id < $2::bigint)
       ORDER BY id DESC LIMIT $3`,
      [accountId, page.beforeId ?? null, page.limit],
    );
    return rows.map(entryOf);
  }

  /** The entries of one invoice (its consumption and reversals), oldest first. */
  async listInvoiceEntries(invoiceId: string, q: Queryable = this.pool): Promise<CreditLedgerEntryRecord[]> {
    const { rows } = await q.query(`SELECT ${ENTRY_COLUMNS} FROM credit_ledger_entries WHERE invoice_id = $1 ORDER BY id`, [invoiceId]);
    return rows.map(entryOf);
  }
}

const ENTRY_COLUMNS = `id::text, account_id, grant_id, kind, trim_scale(amount_usd)::text AS amount_usd, invoice_id, service_period, created_at`;

function entryOf(r: Record<string, unknown>): CreditLedgerEntryRecord {
  return {
    id: r.id as string,
    accountId: r.account_id as string,
    grantId: r.grant_id as string,
    kind: r.kind as CreditEntryKind,
    amountUsd: r.amount_usd as string,
    invoiceId: (r.invoice_id as string | null) ?? null,
    servicePeriod: (r.service_period as string | null) ?? null,
    createdAt: r.created_at as Date,
  };
}
