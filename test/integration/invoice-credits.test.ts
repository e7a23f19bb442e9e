import { CreditGrantsRepository, CreditLedgerRepository, Transactor, type NewCreditGrant } from '@tokenmeter/db';
import { aUsageEvent } from '../factories/usage-events';
import { FakeStripe } from '../helpers/fake-stripe';
import { ingest, invoicingFor, readyToCloseNovember, setIngestProgress, useDatabaseAndStripeProxy } from '../helpers/invoicing';
import { ADD_LINES_PATH, addedLines } from '../helpers/stripe-proxy';

/**
 * Credits on the invoice, against real Postgres (grants and ledger through h/c1's repositories),
 * the real ingest path for prices, stripe-mock behind the idempotent proxy, and the in-memory
 * Stripe where a test needs Stripe's real totals or a lost answer.
 */
describe('credits on the monthly invoice', () => {
  const { db, proxy } = useDatabaseAndStripeProxy();
  let now: Date;

  beforeEach(async () => {
    await readyToCloseNovember(db);
    now = new Date('2026-12-02T00:00:00Z');
  });

  const svc = (stripe: string | FakeStripe = proxy.url) => invoicingFor(db, stripe, () => now);

  async function grant(id: string, amountUsd: string, over: Partial<NewCreditGrant> = {}): Promise<void> {
    const g: NewCreditGrant = {
      id,
      accountId: 'acct_a',
      amountUsd,
      category: 'paid',
      priority: 0,
      effectiveAt: new Date('2026-10-01T00:00:00Z'),
      expiresAt: null,
      models: [],
      idempotencyKey: `key-${id}`,
      requestHash: 'test',
      status: 'active',
      ...over,
    };
    await new Transactor(db.pool).run(async (q) => {
      await new CreditGrantsRepository(db.pool).createGrant(g, q);
      await new CreditLedgerRepository(db.pool).append([{ accountId: g.accountId, grantId: id, kind: 'grant', amountUsd }], q);
    });
  }

  const lines = async (invoiceId: string) =>
    (
      await db.pool.query(
        `SELECT line_key, token_type, description, trim_scale(amount_exact_usd)::text AS exact, amount_minor::text AS cents
         FROM invoice_lines WHERE invoice_id = $1 ORDER BY id`,
        [invoiceId],
      )
    ).rows.map((r) => [r.line_key, r.description, r.exact, r.cents]);
  const ledger = async () =>
    (
      await db.pool.query(
        `SELECT grant_id, kind, trim_scale(amount_usd)::text AS amount, invoice_id IS NOT NULL AS on_invoice, service_period
         FROM credit_ledger_entries ORDER BY id`,
      )
    ).rows.map((r) => [r.grant_id, r.kind, r.amount, r.on_invoice, r.service_period]);
  const balances = async () =>
    Object.fromEntries(
      (await db.pool.query(`SELECT grant_id, trim_scale(sum(amount_usd))::text AS b FROM credit_ledger_entries GROUP BY grant_id ORDER BY grant_id`)).rows.map(
        (r) => [r.grant_id, r.b],
      ),
    );
  /** The identity the ledger must always hold: balance = amount - consumed + reversed - expired - voided. */
  const identityHolds = async () => {
    const { rows } = await db.pool.query(`
      SELECT g.id, g.amount_usd - coalesce(sum(-e.amount_usd) FILTER (WHERE e.kind = 'consumption'), 0)
               + coalesce(sum(e.amount_usd) FILTER (WHERE e.kind = 'reversal'), 0)
               - coalesce(sum(-e.amount_usd) FILTER (WHERE e.kind = 'expiry'), 0)
               - coalesce(sum(-e.amount_usd) FILTER (WHERE e.kind = 'void'), 0) = coalesce(sum(e.amount_usd), 0) AS ok,
             coalesce(sum(e.amount_usd), 0) >= 0 AS non_negative
      FROM credit_grants g LEFT JOIN credit_ledger_entries e ON e.grant_id = g.id GROUP BY g.id, g.amount_usd`);
    return rows.every((r) => r.ok && r.non_negative);
  };

  /** The worked example of docs/credits.md: usage lines, a discount, two grants, the floor. */
  async function workedExample(): Promise<void> {
    await db.pool.query(
      `INSERT INTO accounts (id) VALUES ('acct_a') ON CONFLICT DO NOTHING;
       INSERT INTO account_price_overrides (account_id, model_id, kind, discount_percent, effective_from)
       VALUES ('acct_a', 'deepseek-r1', 'discount', 10, '2026-01-01T00:00:00Z')`,
    );
    await grant('grt_promo', '1.00', { category: 'promotional' });
    await grant('grt_paid', '5.00');
    await ingest(db, [
      aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-11-03T09:00:00.000Z', usage: { input_tokens: 1_000_000, output_tokens: 1_000_000 } }),
      aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-11-12T14:00:00.000Z', model: 'gpt-4o', usage: { input_tokens: 100_000, output_tokens: 50_000 } }),
      aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-11-20T18:00:00.000Z', model: 'deepseek-v3', usage: { input_tokens: 18_000, output_tokens: 0 } }),
    ]);
  }

  it('applies two grants as the last lines, floors the total at zero, and consumes exactly the lines in the same transaction', async () => {
    await workedExample();
    const first = await svc().closer.close('2026-11', { finalize: false });
    const id = first.results[0].invoiceId!;
    expect(await lines(id)).toEqual([
      ['2026-11:deepseek-r1:input:0.5714', 'deepseek-r1 input tokens, 1,000,000 x $0.5714 per 1M, Nov 2026', '0.5714', '57'],
      ['2026-11:deepseek-r1:output:2.2857', 'deepseek-r1 output tokens, 1,000,000 x $2.2857 per 1M, Nov 2026', '2.2857', '229'],
      ['2026-11:deepseek-r1:discount:10', 'deepseek-r1 discount 10%, Nov 2026', '-0.28571', '-29'],
      ['2026-11:deepseek-v3:input:0.27', 'deepseek-v3 input tokens, 18,000 x $0.27 per 1M, Nov 2026', '0.00486', '0'],
      ['2026-11:gpt-4o:input:2.5', 'gpt-4o input tokens, 100,000 x $2.50 per 1M, Nov 2026', '0.25', '25'],
      ['2026-11:gpt-4o:output:10', 'gpt-4o output tokens, 50,000 x $10.00 per 1M, Nov 2026', '0.5', '50'],
      ['credit:2026-11:grt_promo', 'Promotional credit grt_promo, Nov 2026', '-1', '-100'],
      // -2.32625 rounds to -2.33, which would make the total -0.01: the floor takes it to -2.32.
      ['credit:2026-11:grt_paid', 'Prepaid credit grt_paid, Nov 2026', '-2.32', '-232'],
    ]);
    const { rows: [inv] } = await db.pool.query(`SELECT total_minor::text, trim_scale(total_exact_usd)::text AS exact FROM invoices WHERE id = $1`, [id]);
    expect(inv).toEqual({ total_minor: '0', exact: '0.00625' });
    expect(await ledger()).toEqual([
      ['grt_promo', 'grant', '1', false, null],
      ['grt_paid', 'grant', '5', false, null],
      ['grt_paid', 'consumption', '-2.32', true, '2026-11'],
      ['grt_promo', 'consumption', '-1', true, '2026-11'],
    ]);

    // Closing again changes nothing and writes nothing.
    await svc().closer.close('2026-11', { finalize: false });
    expect(await ledger()).toHaveLength(4);

    // A late November event while it is still a draft: only the difference is consumed.
    await ingest(db, [aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-11-29T00:00:00.000Z', model: 'gpt-4o', usage: { input_tokens: 1_000_000, output_tokens: 0 } })]);
    await svc().closer.close('2026-11', { finalize: false });
    expect((await lines(id)).slice(-1)).toEqual([['credit:2026-11:grt_paid', 'Prepaid credit grt_paid, Nov 2026', '-4.82', '-482']]);
    expect((await ledger()).slice(4)).toEqual([['grt_paid', 'consumption', '-2.5', true, '2026-11']]);
    expect(await balances()).toEqual({ grt_paid: '0.18', grt_promo: '0' });
    expect(await identityHolds()).toBe(true);

    const report = await svc().reconciliation.reconcile('2026-11', { withStripe: false });
    expect(report.accounts_detail[0]).toMatchObject({ mismatches: [], invoice_credits_minor: '-582', ledger_credits_usd: '-5.82', invoice_total_minor: '0' });
  });

  it('consumes a grant once when closes of the same month, and of two months, run at once', async () => {
    await grant('grt_small', '1.00');
    await ingest(db, [
      // October usage (no October invoice yet) and November usage, each worth more than the grant.
      aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-10-20T00:00:00.000Z', model: 'gpt-4o', usage: { input_tokens: 1_000_000, output_tokens: 0 } }),
      aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-11-20T00:00:00.000Z', model: 'gpt-4o', usage: { input_tokens: 1_000_000, output_tokens: 0 } }),
    ]);
    await Promise.all([
      svc().closer.close('2026-11', { finalize: false }),
      svc().closer.close('2026-11', { finalize: false }),
      svc().closer.close('2026-10', { finalize: false }),
      svc().closer.close('2026-11', { finalize: false }),
    ]);
    const consumed = (await ledger()).filter((e) => e[1] !== 'grant');
    // Whichever invoice took it, the grant gave its $1.00 once, to one (invoice, service period).
    expect(consumed).toHaveLength(1);
    expect(consumed[0].slice(1, 4)).toEqual(['consumption', '-1', true]);
    expect(await balances()).toEqual({ grt_small: '0' });
    const { rows } = await db.pool.query(`SELECT sum(amount_minor)::text AS credits FROM invoice_lines WHERE token_type = 'credit'`);
    expect(rows[0].credits).toBe('-100');
    expect(await identityHolds()).toBe(true);
  });

  it('pushes credit lines as negative items naming the grant; a lost answer then a rerun gives one set of items; Stripe total = ours', async () => {
    await workedExample();
    const fake = new FakeStripe();
    const { results } = await svc(fake).closer.close('2026-11', { finalize: false });
    const id = results[0].invoiceId!;
    // Stripe adds the chunk with the promo credit line, the answer is lost; the run ends sync_failed.
    const carries = (p: Record<string, unknown>, lineKey: string) =>
      (p.lines as { metadata: Record<string, string> }[]).some((l) => l.metadata.line_key === lineKey);
    fake.inject({ operation: 'invoices.addLines', when: 'after', match: (p) => carries(p, 'credit:2026-11:grt_promo'), times: 1 });
    const crashed = await svc(fake).closer.close('2026-11');
    expect(crashed.syncFailed).toBe(1);
    const rerun = await svc(fake).closer.close('2026-11');
    expect(rerun.results.map((r) => [r.outcome, r.status])).toEqual([['resumed', 'finalized']]);

    const items = fake.objectsOf('acct_a').items.filter((i) => i.metadata.token_type === 'credit');
    expect(items.map((i) => [i.metadata.line_key, i.metadata.grant_id, i.amountMinor])).toEqual([
      ['credit:2026-11:grt_promo', 'grt_promo', -100n],
      ['credit:2026-11:grt_paid', 'grt_paid', -232n],
    ]);
    const { rows: [inv] } = await db.pool.query(`SELECT total_minor::text, stripe_invoice_id FROM invoices WHERE id = $1`, [id]);
    expect(fake.invoices.get(inv.stripe_invoice_id)!.totalMinor!.toString()).toBe(inv.total_minor);
    const report = await svc(fake).reconciliation.reconcile('2026-11');
    expect(report.accounts_detail[0].mismatches).toEqual([]);
    // The ledger did not move with the push: consumption was written once, by the close.
    expect((await ledger()).filter((e) => e[1] === 'consumption')).toHaveLength(2);
  });

  it('stripe-mock accepts the negative credit items, and what we sent adds up to our total to the cent', async () => {
    await workedExample();
    const { results } = await svc().closer.close('2026-11');
    expect(results[0].status).toBe('finalized');
    const sent = proxy.ledger.filter((e) => e.method === 'POST' && ADD_LINES_PATH.test(e.path) && e.idempotencyKey?.startsWith(`lines-${results[0].invoiceId}-`));
    expect(sent.every((e) => e.status === 200)).toBe(true);
    const lines = sent.flatMap((e) => addedLines(e.params));
    const amounts = lines.map((l) => BigInt(l.amount));
    expect(amounts.filter((a) => a < 0n)).toEqual([-29n, -100n, -232n]);
    expect(amounts.reduce((s, a) => s + a, 0n)).toBe(BigInt(results[0].totalMinor));
    expect(lines.at(-1)!.metadata.grant_id).toBe('grt_paid');
  });

  it('voiding an invoice reverses its credits; re-closing the month changes nothing; the next month draws on the balance again', async () => {
    await workedExample();
    const fake = new FakeStripe();
    const { results } = await svc(fake).closer.close('2026-11');
    const id = results[0].invoiceId!;
    await svc(fake).sync.void(id, null);
    await svc(fake).sync.void(id, null); // twice: reversed once
    expect((await ledger()).slice(4)).toEqual([
      ['grt_paid', 'reversal', '2.32', true, '2026-11'],
      ['grt_promo', 'reversal', '1', true, '2026-11'],
    ]);
    expect(await balances()).toEqual({ grt_paid: '5', grt_promo: '1' });
    // Its events stay claimed by the void invoice (a write-off): the month has nothing to bill again.
    const again = await svc(fake).closer.close('2026-11');
    expect(again.results).toEqual([]);
    expect((await svc(fake).closer.closeAccount('acct_a', '2026-11', false)).outcome).toBe('already_final');
    expect(await ledger()).toHaveLength(6);
    expect((await svc(fake).reconciliation.reconcile('2026-11')).accounts_detail[0].mismatches).toEqual([]);

    now = new Date('2027-01-02T00:00:00Z');
    await setIngestProgress(db, new Date('2027-01-01T02:00:00Z'));
    await ingest(db, [aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-12-05T00:00:00.000Z', model: 'gpt-4o', usage: { input_tokens: 1_000_000, output_tokens: 0 } })]);
    const dec = await svc(fake).closer.close('2026-12');
    expect((await lines(dec.results[0].invoiceId!)).filter((l) => String(l[0]).startsWith('credit:'))).toEqual([
      ['credit:2026-12:grt_promo', 'Promotional credit grt_promo, Dec 2026', '-1', '-100'],
      ['credit:2026-12:grt_paid', 'Prepaid credit grt_paid, Dec 2026', '-1.5', '-150'],
    ]);
    expect(await balances()).toEqual({ grt_paid: '3.5', grt_promo: '0' });
    expect(await identityHolds()).toBe(true);
  });

  it('expires the rest of a grant at the close of its month, once nothing from before expires_at is unbilled; late usage after that is billed as usual', async () => {
    await grant('grt_exp', '10', { category: 'promotional', expiresAt: new Date('2026-11-10T12:00:00Z') });
    // An October draft exists and an October event is still unclaimed by it: November's close may not expire the grant yet.
    await ingest(db, [aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-10-05T00:00:00.000Z', model: 'gpt-4o', usage: { input_tokens: 100_000, output_tokens: 0 } })]);
    await svc().closer.close('2026-10', { finalize: false });
    await ingest(db, [
      aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-10-06T00:00:00.000Z', model: 'gpt-4o', usage: { input_tokens: 100_000, output_tokens: 0 } }),
      aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-11-05T00:00:00.000Z', model: 'gpt-4o', usage: { input_tokens: 300_000, output_tokens: 0 } }),
      aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-11-20T00:00:00.000Z', model: 'gpt-4o', usage: { input_tokens: 1_000_000, output_tokens: 0 } }),
    ]);
    await svc().closer.close('2026-11', { finalize: false });
    expect((await ledger()).filter((e) => e[1] === 'expiry')).toEqual([]);
    // The October draft takes its event; then November's next close expires the rest.
    await svc().closer.close('2026-10', { finalize: false });
    await svc().closer.close('2026-11', { finalize: false });
    expect((await ledger()).slice(1)).toEqual([
      ['grt_exp', 'consumption', '-0.25', true, '2026-10'],
      ['grt_exp', 'consumption', '-0.75', true, '2026-11'],
      ['grt_exp', 'consumption', '-0.25', true, '2026-10'],
      ['grt_exp', 'expiry', '-8.75', false, '2026-11'],
    ]);
    await svc().closer.close('2026-11', { finalize: false });
    expect((await ledger()).filter((e) => e[1] === 'expiry')).toHaveLength(1);

    // November is final; an event from before the expiry arrives late: December bills it, no credit left.
    await svc().closer.close('2026-11');
    await svc().closer.close('2026-10');
    await ingest(db, [aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-11-08T00:00:00.000Z', model: 'gpt-4o', usage: { input_tokens: 100_000, output_tokens: 0 } })]);
    now = new Date('2027-01-02T00:00:00Z');
    await setIngestProgress(db, new Date('2027-01-01T02:00:00Z'));
    const dec = await svc().closer.close('2026-12');
    expect(await lines(dec.results[0].invoiceId!)).toEqual([
      ['2026-11:gpt-4o:input:2.5', 'gpt-4o input tokens, 100,000 x $2.50 per 1M (usage from Nov 2026)', '0.25', '25'],
    ]);
    expect(await balances()).toEqual({ grt_exp: '0' });
    expect(await identityHolds()).toBe(true);
  });
});
