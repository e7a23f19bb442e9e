/** What `npm run demo` prints when it is done: what was published and stored, and how to look at it. */
import { Decimal } from '@tokenmeter/billing';
import type { TokenmeterConfig } from '@tokenmeter/config';
import type { PriceVersionRecord, UsageReadRepository } from '@tokenmeter/db';
import type { DemoReport } from './demo';
import { DEMO_ACCOUNTS } from './demo-accounts';

/** numeric(20,10) comes back as "0.5714000000": print the value, not the column's scale. */
function rate(perMTok: string): string {
  return new Decimal(perMTok).toFixed();
}

function counts(map: Map<string, number>): string {
  return [...map].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
}

/** What was published and stored, and how to look at it. */
export async function describeDemo(report: DemoReport, usage: UsageReadRepository, config: TokenmeterConfig): Promise<string[]> {
  const t = report.traffic;
  const byCode = new Map<string, number>();
  for (const m of t.malformed) byCode.set(m.code, (byCode.get(m.code) ?? 0) + 1);
  const change = report.priceChange;
  const base = `http://127.0.0.1:${config.api.port}`;
  const lines = [
    '',
    `Published ${report.messages} messages to ${report.topic}:`,
    `  ${t.events} events from ${t.from.toISOString()} to now, ${t.byAccount.size} accounts (${counts(t.byAccount)})`,
    `  models: ${counts(t.byModel)}`,
    `  usage shapes: ${counts(t.byShape)}`,
    `  ${t.redeliveries} redeliveries of the same events (duplicates: counted once)`,
    `  ${t.malformed.length} malformed messages (${counts(byCode)}): rejected, kept in rejected_events and ${report.topic}.dlq`,
    `  1 reuse of event id ${t.conflictEventId} with different usage: kept in event_conflicts, the first one stands`,
    `Accounts: ${report.accounts.created.length} created, ${report.accounts.named.length} named, ${report.accounts.present.length} already there ` +
      `(${DEMO_ACCOUNTS.map((a) => a.id).join(', ')})`,
    `Price change (${change.created ? 'added' : 'already there, not added again'}): ${change.version.modelId} from ${change.version.effectiveFrom.toISOString()}: ` +
      `input ${rate(change.previous.inputPerMTok)} -> ${rate(change.version.inputPerMTok)}, ` +
      `output ${rate(change.previous.outputPerMTok)} -> ${rate(change.version.outputPerMTok)}, ` +
      `cache read ${rate(change.previous.cacheReadPerMTok)} -> ${rate(change.version.cacheReadPerMTok)} USD per 1M tokens`,
  ];
  if (!report.caughtUp) {
    lines.push('Not ingested yet: the events wait in Kafka and are stored, priced at their own time, once an ingestor runs.');
  } else {
    const duplicates = t.events - (report.newEvents ?? 0);
    lines.push(
      report.newEvents === 0
        ? `Ingested: no new events. Every event was already stored by an earlier run (event ids are deterministic), so this run's messages were all duplicates.`
        : `Ingested: ${report.newEvents} new events stored and priced` +
            (duplicates > 0 ? `; ${duplicates} were already stored by an earlier run (duplicates, not counted twice).` : '.'),
    );
    lines.push(...(await costLines(usage, t, change.version)));
  }
  lines.push('', 'See it:', `  dashboard      ${base}/app  (sign in with an API key)`, `  API docs       ${base}/docs  (Authorize with the same key)`);
  if (report.keys.length > 0) {
    lines.push('  API keys created for you, shown ONCE (only their hash is stored; keep them):');
    for (const k of report.keys) lines.push(`    ${k.role.padEnd(8)} ${k.key}${k.accountId ? `  (account ${k.accountId})` : ''}`);
  } else {
    lines.push('  the demo\'s admin and account keys were created by an earlier run and cannot be shown again (npm run cli -- keys list).');
  }
  lines.push(
    '  more keys:      npm run cli -- keys create --role admin',
    `                  npm run cli -- keys create --role account --account ${DEMO_ACCOUNTS[0].id}`,
  );
  return lines;
}

/** Per-account totals from the rollups, and what the price change did to deepseek-r1's cost per request. */
async function costLines(usage: UsageReadRepository, t: DemoReport['traffic'], change: PriceVersionRecord): Promise<string[]> {
  const lines = [`Over the demo range (from the hourly rollups, as the dashboards read them):`];
  const perPeriod = { before: { requests: 0, cost: new Decimal(0) }, after: { requests: 0, cost: new Decimal(0) } };
  const inRange = change.effectiveFrom > t.from && change.effectiveFrom < t.to;
  for (const a of DEMO_ACCOUNTS) {
    const summary = await usage.summarizeAccount(a.id, t.from, t.to);
    const costUsd = new Decimal(summary.totals.costUsd).toFixed(2);
    lines.push(`  ${a.id.padEnd(16)} ${a.name.padEnd(26)} ${summary.totals.requests.padStart(7)} requests  ${costUsd.padStart(9)} USD`);
    if (!inRange) continue;
    for (const [period, from, to] of [['before', t.from, change.effectiveFrom], ['after', change.effectiveFrom, t.to]] as const) {
      const model = (await usage.summarizeAccount(a.id, from, to)).byModel.find((m) => m.model === change.modelId);
      if (!model) continue;
      perPeriod[period].requests += Number(model.requests);
      perPeriod[period].cost = perPeriod[period].cost.plus(model.costUsd);
    }
  }
  const per1000 = (p: { requests: number; cost: Decimal }) => (p.requests === 0 ? '-' : p.cost.div(p.requests).times(1000).toFixed(2));
  if (inRange) {
    lines.push(
      `  ${change.modelId} cost per 1,000 requests: ${per1000(perPeriod.before)} USD before ${change.effectiveFrom.toISOString()}, ` +
        `${per1000(perPeriod.after)} USD after`,
    );
  }
  return lines;
}
