/**
 * Where every table would go if Tokenmeter outgrows one Postgres primary and moves to Citus,
 * distributed by account_id (docs/scaling.md, "Beyond one primary"). Nothing reads this at run
 * time; test/integration/distribution-keys.test.ts holds the migrated schema to it:
 *
 * - every table is listed here, and every table listed exists;
 * - a distributed table has its distribution column, or says why not yet (`columnToAdd`);
 * - every primary key and unique index of a distributed table contains the distribution column,
 *   because Citus enforces uniqueness within one shard only, or is listed in `uniqueKeyExceptions`
 *   with why it does not yet and the plan for it;
 * - foreign keys point where Citus can enforce them (docs/scaling.md), or are listed exceptions.
 *
 * The exceptions are the work list of a move to Citus; the test keeps it from growing silently.
 */

/** Columns of one key, in the key's order, as pg_index lists them. */
export type KeyColumns = readonly string[];

export interface KeyException {
  columns: KeyColumns;
  why: string;
}

export type TablePlacement =
  | {
      kind: 'distributed';
      /** The column holding the account id (accounts.id for accounts itself). */
      column: string;
      why: string;
      /** The distribution column does not exist yet: why, and what fills it. */
      columnToAdd?: string;
      uniqueKeyExceptions?: readonly KeyException[];
      foreignKeyExceptions?: readonly KeyException[];
    }
  | { kind: 'reference'; why: string }
  | { kind: 'local'; why: string };

const SURROGATE_ID =
  'a generated surrogate id (a sequence, or random text such as bud_/inv_ + 12 random bytes) that rows are found by; ' +
  'it stays unique by how it is generated, which no index on one shard can check. Plan: primary key (account_id, id), ' +
  'and every lookup by id also carries the account.';

const STRIPE_ID =
  'an id Stripe assigns; the index only stops one Stripe object from being linked to two rows. Plan: drop it from the ' +
  'distributed table and keep the guard in a small table keyed by the Stripe id (distributed by that id), written in the ' +
  'transaction that links it, once per object.';

export const TABLE_PLACEMENT: Readonly<Record<string, TablePlacement>> = {
  accounts: {
    kind: 'distributed',
    column: 'id',
    why: 'the tenant: accounts.id is the account_id the other tenant tables are distributed by, so an account lives on the shard of its usage',
    uniqueKeyExceptions: [{ columns: ['stripe_customer_id'], why: STRIPE_ID }],
  },
  usage_events: {
    kind: 'distributed',
    column: 'account_id',
    why:
      'the ledger, by far the largest table; every read of it names one account. Partitioned by month of occurred_at; ' +
      'its key (account_id, occurred_at, event_id) holds both the partition and the distribution column',
  },
  usage_event_ids: {
    kind: 'distributed',
    column: 'account_id',
    why: 'the dedupe of usage_events (one row per event_id ever stored), written in the same ingest transaction as the events',
    uniqueKeyExceptions: [
      {
        columns: ['event_id'],
        why:
          'the idempotency key, deduplicated for all time across accounts today (docs/event-contract.md). Plan ' +
          '(docs/scaling.md, "event_id dedupe"): dedupe by (account_id, event_id), co-located with the events, so ' +
          'a redelivery is found on the shard (and the Kafka partition, keyed by account_id) its account is on.',
      },
    ],
  },
  usage_hourly: { kind: 'distributed', column: 'account_id', why: 'the rollups every dashboard reads, one account at a time' },
  usage_daily: {
    kind: 'distributed',
    column: 'account_id',
    why: 'the day rollups, written in the ingest transaction with the hour rows of the same account and read with them by the dashboards',
  },
  usage_monthly: {
    kind: 'distributed',
    column: 'account_id',
    why: 'the month rollups, written in the ingest transaction with the hour and day rows of the same account and read with them by the dashboards',
  },
  event_conflicts: {
    kind: 'distributed',
    column: 'account_id',
    why: 'written in the ingest transaction beside the events it conflicts with',
    columnToAdd: 'a conflict is recorded against the stored event; with dedupe by (account_id, event_id) that event\'s account is known. Plan: add it.',
    uniqueKeyExceptions: [
      { columns: ['id'], why: SURROGATE_ID },
      { columns: ['event_id', 'payload_hash'], why: 'once per distinct payload of an event. Plan: (account_id, event_id, payload_hash), with the column.' },
    ],
  },
  invoices: {
    kind: 'distributed',
    column: 'account_id',
    why: 'one per account and period; the close claims the account\'s events in the invoice\'s transaction (same shard)',
    uniqueKeyExceptions: [
      { columns: ['id'], why: SURROGATE_ID },
      { columns: ['stripe_invoice_id'], why: STRIPE_ID },
    ],
  },
  invoice_lines: {
    kind: 'distributed',
    column: 'account_id',
    why: 'read and written only with their invoice',
    columnToAdd: 'lines are keyed by their invoice today. Plan: add the invoice\'s account_id.',
    uniqueKeyExceptions: [
      { columns: ['id'], why: SURROGATE_ID },
      { columns: ['invoice_id', 'line_key'], why: 'one line per key per invoice. Plan: (account_id, invoice_id, line_key), with the column.' },
    ],
    foreignKeyExceptions: [{ columns: ['invoice_id'], why: 'to invoices(id). Plan: (account_id, invoice_id) to invoices(account_id, id), with the column.' }],
  },
  budgets: {
    kind: 'distributed',
    column: 'account_id',
    why: 'per account; read with the account\'s spend',
    uniqueKeyExceptions: [{ columns: ['id'], why: SURROGATE_ID }],
  },
  budget_windows: {
    kind: 'distributed',
    column: 'account_id',
    why: 'updated in every ingest transaction that carries the budget\'s usage, so it must sit on the usage\'s shard',
    columnToAdd: 'windows are keyed by budget today. Plan: add the budget\'s account_id.',
    uniqueKeyExceptions: [
      { columns: ['budget_id', 'window_start'], why: 'one row per budget window. Plan: (account_id, budget_id, window_start), with the column.' },
    ],
  },
  budget_alerts: {
    kind: 'distributed',
    column: 'account_id',
    why: 'inserted in the ingest transaction that crosses the threshold',
    uniqueKeyExceptions: [
      { columns: ['id'], why: SURROGATE_ID },
      {
        columns: ['budget_id', 'window_start', 'threshold_pct', 'direction'],
        why: 'exactly once per (budget, window, threshold, direction). A budget has one account, so prefixing account_id keeps the same uniqueness. Plan: do that.',
      },
    ],
  },
  credit_grants: {
    kind: 'distributed',
    column: 'account_id',
    why: 'per account; burnt by the account\'s close',
    uniqueKeyExceptions: [
      { columns: ['id'], why: SURROGATE_ID },
      { columns: ['stripe_invoice_id'], why: STRIPE_ID },
    ],
  },
  credit_ledger_entries: {
    kind: 'distributed',
    column: 'account_id',
    why: 'per account; written in the close\'s transaction with the invoice',
    uniqueKeyExceptions: [{ columns: ['id'], why: SURROGATE_ID }],
  },
  credit_alerts: {
    kind: 'distributed',
    column: 'account_id',
    why: 'per account; its unique key (account_id, funding_grant_id, kind, threshold_pct) already leads with the account',
    uniqueKeyExceptions: [{ columns: ['id'], why: SURROGATE_ID }],
  },
  credit_alert_fundings: {
    kind: 'distributed',
    column: 'account_id',
    why: 'the baseline of an account\'s credit alerts, read with its balances',
    uniqueKeyExceptions: [
      { columns: ['funding_grant_id'], why: 'one baseline per funding grant; a grant has one account. Plan: (account_id, funding_grant_id).' },
    ],
  },

  models: { kind: 'reference', why: 'the price book: small, changed by admins, read by every pricing and by usage queries' },
  price_versions: {
    kind: 'reference',
    why: 'small; joined from usage_events in SQL (receipts, the close\'s claims) and read whole by the ingest price-book cache',
  },
  account_price_overrides: {
    kind: 'reference',
    why: 'per account but small and admin-written; joined from usage_events by id like price_versions and read whole by the price-book cache',
  },

  api_keys: {
    kind: 'local',
    why: 'found by its unique prefix before the account is known; admin and auditor keys have no account; joined with no usage table',
  },
  web_sessions: { kind: 'local', why: 'found by token hash; admin sessions have no account; only the API reads it' },
  dashboard_links: { kind: 'local', why: 'found by token hash; only the API reads it' },
  audit_log: { kind: 'local', why: 'admin actions on any kind of target; has no account_id' },
  stripe_webhook_events: { kind: 'local', why: 'dedupe of Stripe webhooks by Stripe event id; has no account_id' },
  webhook_endpoints: { kind: 'local', why: 'the operator\'s endpoints, not an account\'s' },
  webhook_deliveries: { kind: 'local', why: 'one per (endpoint, alert message); belongs to the operator\'s endpoints' },
  webhook_delivery_attempts: { kind: 'local', why: 'the attempts of a delivery' },
  ingest_progress: { kind: 'local', why: 'one row per Kafka partition, not per account; read whole by the close completeness rule' },
  rejected_events: { kind: 'local', why: 'keyed by Kafka position; a rejected payload may have no valid account_id' },
  _prisma_migrations: { kind: 'local', why: 'migration bookkeeping' },
};
