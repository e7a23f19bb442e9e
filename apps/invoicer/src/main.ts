import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { createLogger, loadConfig } from '@tokenmeter/config';
import { DomainError, minorUnitsToUsdString } from '@tokenmeter/billing';
import { progressBar } from './progress';
import { CloseScheduler } from './scheduler';
import { createInvoicer } from './wiring';

const USAGE = `usage:
  npm run invoicer -- close --period 2026-11 [--account acct_1] [--dry-run] [--force] [--no-finalize]
  npm run invoicer -- reconcile --period 2026-11 [--account acct_1] [--no-stripe]
  npm run invoicer -- retry-sync --invoice inv_...
  npm run invoicer -- schedule [--interval-minutes 60]      (also: npm run start:invoicer)`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      period: { type: 'string' },
      account: { type: 'string' },
      invoice: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      'no-finalize': { type: 'boolean', default: false },
      'no-stripe': { type: 'boolean', default: false },
      'interval-minutes': { type: 'string', default: '60' },
    },
    strict: true,
  });
  const config = loadConfig();
  const log = createLogger('invoicer', config.logLevel);

  if (command === 'schedule') {
    const invoicer = createInvoicer(config, { log });
    const scheduler = new CloseScheduler(invoicer.closer, log, Number(values['interval-minutes']) * 60_000);
    scheduler.start();
    log.info({ intervalMinutes: Number(values['interval-minutes']) }, 'invoicer schedule started');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await scheduler.stop();
    await invoicer.close();
    return 0;
  }

  if (command === 'close' || command === 'reconcile') {
    if (!values.period) throw new UsageError('--period is required');
  } else if (command === 'retry-sync') {
    if (!values.invoice) throw new UsageError('--invoice is required');
  } else {
    throw new UsageError(command ? `unknown command ${command}` : 'a command is required');
  }

  const invoicer = createInvoicer(config, { log });
  try {
    if (command === 'close') {
      const started = Date.now();
      const summary = await invoicer.closer.close(values.period!, {
        accountId: values.account,
        dryRun: values['dry-run'],
        force: values.force,
        finalize: !values['no-finalize'],
        // Audited as invoices.close; null is the CLI's actor, as in apps/cli.
        actorKeyId: null,
        onProgress: progressBar(values['dry-run'] ? 'close (dry run)' : 'close'),
      });
      const failed = summary.results.filter((r) => r.sync?.status === 'sync_failed');
      process.stderr.write(
        `${summary.period}: ${summary.accounts} accounts, ${summary.created} created, ${summary.updated} updated, ` +
          `${summary.alreadyFinal} already final, ${summary.finalized} finalized in Stripe, ${summary.syncFailed} sync_failed, ` +
          `total $${minorUnitsToUsdString(summary.totalMinor)}${summary.dryRun ? ' (dry run: nothing written)' : ''}` +
          `${summary.forced ? ' (FORCED before ingestion was complete)' : ''} in ${((Date.now() - started) / 1000).toFixed(1)}s\n`,
      );
      for (const f of failed) process.stderr.write(`  sync_failed ${f.invoiceId} (${f.accountId}): ${f.sync?.error}\n`);
      const { results, ...totals } = summary;
      process.stdout.write(`${JSON.stringify({ ...totals, invoices: results.length })}\n`);
      return failed.length > 0 ? 2 : 0;
    }
    if (command === 'reconcile') {
      const report = await invoicer.reconciliation.reconcile(values.period!, { accountId: values.account, withStripe: !values['no-stripe'] });
      for (const d of report.accounts_detail.filter((x) => x.mismatches.length > 0)) {
        process.stderr.write(`MISMATCH ${d.account_id}: ${d.mismatches.join(', ')} (raw ${d.raw_total_usd}, rollup ${d.rollup_total_usd} hourly / ${d.rollup_daily_total_usd} daily / ${d.rollup_monthly_total_usd} monthly, invoice ${d.invoice_exact_usd} / ${d.invoice_total_minor}c, stripe ${d.stripe_total_minor}c)\n`);
      }
      process.stdout.write(`${JSON.stringify(report)}\n`);
      process.stderr.write(`${report.period}: ${report.accounts} accounts, ${report.mismatched_accounts} with mismatches\n`);
      return report.mismatched_accounts > 0 ? 1 : 0;
    }
    const outcome = await invoicer.sync.retrySync(values.invoice!, null);
    process.stdout.write(`${JSON.stringify(outcome)}\n`);
    return outcome.status === 'sync_failed' ? 2 : 0;
  } finally {
    await invoicer.close();
  }
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError || (err as { code?: string })?.code?.startsWith?.('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
      process.exit(64);
    }
    process.stderr.write(`${err instanceof DomainError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
