import { costUnitsToString, dueCreditAlerts, NotFoundError, parseCostUnits, type CostUnits } from '@tokenmeter/billing';
import type { Logger } from '@tokenmeter/config';
import { CREDIT_GRANTS_CHANNEL, CREDIT_USAGE_CHANNEL, type CreditAlertsRepository } from '@tokenmeter/db';
import type { CreditBalances, CreditsService } from './credits.service';
import { PgListener } from './pg-listener';

export interface CreditAlertsWatcherOptions {
  databaseUrl: string;
  /** credits_low thresholds, as parseCreditLowThresholds gives them (e.g. ['20', '5']). */
  thresholdsPct: readonly string[];
  /** Accounts checked at once (each check is a few reads). */
  concurrency?: number;
}

/**
 * What the account can still burn, for the alerts: the available balance of its grants that are
 * usable now or scheduled (not voided, not expired, not pending payment), from the balances
 * GET /v1/credits shows.
 */
export function alertableUnits(balances: CreditBalances): CostUnits {
  let units = 0n;
  for (const g of balances.grants) if (g.state === 'usable' || g.state === 'scheduled') units += parseCostUnits(g.availableUsd, 'available_usd');
  return units;
}

/**
 * Derives credits_low / credits_exhausted alerts (docs/credits.md "Credit alerts") as soon as the
 * usage is stored, never on a timer: a dedicated connection LISTENs on tokenmeter_credit_usage (the
 * ingest and reprice transactions name the accounts whose usage they stored) and
 * tokenmeter_credit_grants (a grant created, voided or activated). A notified account is checked off
 * any request path: its balances with CreditsService.balances (the code of GET /v1/credits), the
 * baseline of its latest funding, the pure rule dueCreditAlerts, and the due alerts inserted ON
 * CONFLICT DO NOTHING (credit_alerts' unique key), which NOTIFYs tokenmeter_alerts for the
 * AlertsDispatcher. Several watchers at once, or one checking an account twice, record each alert
 * once. After every (re)connect it checks every account with a live grant, since notifications
 * sent while it was away are gone.
 *
 * Notified accounts are gathered into a set and checked in rounds of `concurrency`; an account
 * notified while it is being checked is checked again in the next round, so the last check of an
 * account always starts after its last notification.
 */
export class CreditAlertsWatcher {
  private readonly listener: PgListener;
  private pending = new Set<string>();
  private running: Promise<void> | undefined;
  private listening = false;
  private idleWaiters: Array<() => void> = [];
  readonly stats = { notifications: 0, checks: 0, alerts: 0 };

  constructor(
    private readonly credits: CreditsService,
    private readonly alerts: CreditAlertsRepository,
    private readonly options: CreditAlertsWatcherOptions,
    private readonly log: Logger,
  ) {
    this.listener = new PgListener(options.databaseUrl, [CREDIT_USAGE_CHANNEL, CREDIT_GRANTS_CHANNEL], (n) => this.onNotify(n), log);
  }

  async start(): Promise<void> {
    this.listening = true;
    await this.listener.start();
  }

  /** Stops listening and waits for the checks in flight. */
  async stop(): Promise<void> {
    this.listening = false;
    await this.listener.stop();
    await this.running;
  }

  /** Resolves once nothing is pending or being checked (tests). */
  idle(): Promise<void> {
    if (!this.running && this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Queues accounts for a check. */
  enqueue(accountIds: Iterable<string>): void {
    for (const id of accountIds) if (id !== '') this.pending.add(id);
    this.run();
  }

  /**
   * Checks one account now and records the alerts that are due and new. Returns their ids.
   * The funding is read before the balances, so the balances always include it.
   */
  async check(accountId: string): Promise<string[]> {
    this.stats.checks += 1;
    const funding = await this.alerts.latestFunding(accountId);
    if (funding === undefined) return [];
    let balances: CreditBalances;
    try {
      balances = await this.credits.balances(accountId);
    } catch (err) {
      if (err instanceof NotFoundError) return [];
      throw err;
    }
    const available = alertableUnits(balances);
    const availableUsd = costUnitsToString(available);
    const fundedUsd = await this.alerts.fundingBaseline(accountId, funding, availableUsd);
    const due = dueCreditAlerts(parseCostUnits(fundedUsd, 'funded_usd'), available, this.options.thresholdsPct);
    const ids = await this.alerts.insertAlerts(
      due.map((d) => ({ accountId, kind: d.kind, fundingGrantId: funding, thresholdPct: d.thresholdPct, availableUsd, fundedUsd })),
    );
    if (ids.length > 0) {
      this.stats.alerts += ids.length;
      this.log.info({ accountId, fundingGrantId: funding, alerts: ids.length, availableUsd, fundedUsd }, 'credit alerts recorded');
    }
    return ids;
  }

  private onNotify(n?: { channel: string; payload: string }): void {
    if (!this.listening) return;
    if (n === undefined) {
      // (Re)connected: whatever was notified meanwhile is lost, so look at every account with a live grant.
      this.alerts
        .accountsWithLiveGrants()
        .then((ids) => this.enqueue(ids))
        .catch((err) => this.log.error({ err }, 'credit alerts: listing accounts failed; they are checked on their next notification'));
      return;
    }
    this.stats.notifications += 1;
    this.enqueue(n.payload.split(' '));
  }

  private run(): void {
    if (this.running) return;
    this.running = this.drain()
      .catch((err) => this.log.error({ err }, 'credit alerts check failed'))
      .finally(() => {
        this.running = undefined;
        if (this.pending.size > 0) return this.run();
        for (const resolve of this.idleWaiters.splice(0)) resolve();
      });
  }

  private async drain(): Promise<void> {
    const concurrency = this.options.concurrency ?? 4;
    while (this.pending.size > 0) {
      const round = [...this.pending].slice(0, concurrency);
      for (const id of round) this.pending.delete(id);
      const outcomes = await Promise.allSettled(round.map((id) => this.check(id)));
      outcomes.forEach((o, i) => {
        if (o.status === 'rejected') this.log.error({ err: o.reason, accountId: round[i] }, 'credit alerts: check failed; the account is checked on its next notification');
      });
    }
  }
}
