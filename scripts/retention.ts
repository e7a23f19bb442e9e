/**
 * npm run db:retention -- --keep-months N [--dry-run]
 *
 * Detaches and drops the months of raw usage events (usage_events partitions) older than the
 * current UTC month and the N before it, only where every event is on an invoice past draft and
 * the month's own invoices are past draft (EventRetentionService, docs/operations.md "Partitions
 * and retention"). Rollups, invoices and the event_id dedupe are never touched. Each dropped month
 * gets an audit_log entry (usage_events.drop_month). --dry-run changes nothing and prints what a
 * run would do. Reads DATABASE_URL through libs/config like the other scripts.
 *
 * Prints one line per month considered and a JSON summary as the last line on stdout.
 * Exit code 0 on success, 2 for bad arguments, 1 on any other error.
 */
import { DomainError } from '@tokenmeter/billing';
import { loadConfig } from '@tokenmeter/config';
import { AuditLogRepository, createDatabase, Transactor, UsageEventPartitionsRepository } from '@tokenmeter/db';
import { EventRetentionService, type RetentionReport } from '@tokenmeter/ingest';

const USAGE = 'Usage: npm run db:retention -- --keep-months N [--dry-run]';

class UsageError extends Error {}

export function parseRetentionArgs(argv: readonly string[]): { keepMonths: number; dryRun: boolean } {
  let keepMonths: number | undefined;
  let dryRun = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--dry-run') dryRun = true;
    else if (arg === '--keep-months' || arg.startsWith('--keep-months=')) {
      const raw = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
      if (raw === undefined || !/^\d+$/.test(raw)) throw new UsageError('--keep-months needs a whole number of months');
      keepMonths = Number(raw);
    } else throw new UsageError(`unknown argument ${arg}`);
  }
  if (keepMonths === undefined) throw new UsageError('--keep-months is required');
  return { keepMonths, dryRun };
}

function print(report: RetentionReport): void {
  const verb = { dropped: 'dropped', would_drop: 'would drop', kept: 'kept' } as const;
  process.stdout.write(`${report.dryRun ? 'Dry run: nothing is changed. ' : ''}Keeping ${report.firstKept} and later.\n`);
  if (report.months.length === 0) process.stdout.write('No older month of raw events.\n');
  for (const m of report.months) {
    const why = m.reasons.length > 0 ? `: ${m.reasons.join('; ')}` : '';
    process.stdout.write(`${m.period}  ${verb[m.action].padEnd(10)}  ${m.table} (${m.events} events)${why}\n`);
  }
  const count = (action: string) => report.months.filter((m) => m.action === action).length;
  process.stdout.write(
    `${JSON.stringify({ first_kept: report.firstKept, dry_run: report.dryRun, dropped: count('dropped'), would_drop: count('would_drop'), kept: count('kept') })}\n`,
  );
}

async function main(argv: readonly string[]): Promise<void> {
  const { keepMonths, dryRun } = parseRetentionArgs(argv);
  const db = createDatabase(loadConfig().databaseUrl, 2);
  try {
    const retention = new EventRetentionService(new UsageEventPartitionsRepository(db.pool), new AuditLogRepository(db.pool), new Transactor(db.pool));
    // The CLI acts with the database's authority, not a key's: audit entries carry no actor key.
    const report = await retention.run({ keepMonths, dryRun, now: new Date(), actor: { keyId: null, requestId: `cli:${process.pid}` } });
    print(report);
  } finally {
    await db.close();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    if (err instanceof UsageError || (err instanceof DomainError && err.code === 'validation')) {
      process.stderr.write(`error: ${err.message}\n${USAGE}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
