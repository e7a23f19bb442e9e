import { periodOf, previousPeriod } from '@tokenmeter/billing';
import type { Logger } from '@tokenmeter/config';
import { IngestionIncompleteError, type InvoiceCloseService } from '@tokenmeter/invoicing';

/**
 * The monthly close on a timer: every `intervalMs` (hourly by default) it tries to close the
 * previous month. Until ingestion is complete past month end + grace the close refuses and
 * the next tick tries again; once closed, a tick finds nothing to do (closing is idempotent),
 * except for drafts to refresh or interrupted pushes to resume.
 */
export class CloseScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly closer: InvoiceCloseService,
    private readonly log: Logger,
    private readonly intervalMs = 60 * 60_000,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  start(): void {
    const tick = () => {
      this.running ??= this.tick().finally(() => (this.running = undefined));
    };
    tick();
    this.timer = setInterval(tick, this.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  async tick(): Promise<void> {
    const period = previousPeriod(periodOf(this.clock()));
    try {
      const s = await this.closer.close(period);
      this.log.info(
        { period, accounts: s.accounts, created: s.created, updated: s.updated, finalized: s.finalized, syncFailed: s.syncFailed, totalMinor: s.totalMinor },
        'monthly close ran',
      );
    } catch (err) {
      if (err instanceof IngestionIncompleteError) {
        this.log.info({ period, lagging: err.lagging }, 'monthly close waiting for ingestion');
        return;
      }
      this.log.error({ err, period }, 'monthly close failed; retrying next tick');
    }
  }
}
