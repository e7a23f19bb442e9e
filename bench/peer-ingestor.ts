/**
 * The peer in `bench:ingest`: the ingestor most teams would write first, measured on the same
 * published events as ours (docs/benchmarks.md, "The peer"). Run by bench/ingest.ts as its own
 * process, configured like the real ingestor (DATABASE_URL, KAFKA_USAGE_TOPIC, KAFKA_GROUP_ID,
 * DATABASE_POOL_SIZE, INGEST_PARTITION_CONCURRENCY, INGEST_CHUNK_SIZE); SIGTERM leaves the group and exits 0.
 *
 * kafkajs `eachBatch`; per slice of a batch (INGEST_CHUNK_SIZE messages, as ours), ONE Prisma
 * interactive transaction:
 *   accounts      `account.createMany({ skipDuplicates: true })` (usage_events has no foreign key; ours creates them too)
 *   events        `usageEvent.createManyAndReturn({ data, skipDuplicates: true })`
 *   rollups       `usageHourly.upsert` with `increment` per (account, key, model, UTC hour) group
 * then the slice's offsets are committed.
 *
 * Why createManyAndReturn rather than createMany: createMany answers with a count only, so it cannot
 * say WHICH events of a batch with redeliveries were new, and rolling up every event of the batch
 * would count each redelivery twice. createManyAndReturn is the same INSERT ... ON CONFLICT DO
 * NOTHING with a RETURNING of the rows it inserted, so the rollups add exactly the new events, and
 * stay exact when two consumers race on the same events.
 *
 * What it shares with ours, so the comparison is about the write path: the consumer settings
 * (fetch sizes, partitions in flight, chunk size, session timeout), the pool size, and the CPU part (UsageIngestor.prepare:
 * parse, validate, normalise, hash, price with libs/billing, audit flags) and the rollup grouping
 * (hourlyRollups). A team's own first version would usually price with decimal.js, which is slower,
 * so if anything this flatters the peer. Unlike ours it keeps no ingest_progress, budgets, credits,
 * conflicts or dead letters: bench:ingest's events have none of those, and it runs the peer only
 * without --budgets and --credits.
 */
import 'reflect-metadata';
import { Kafka, logLevel, type EachBatchPayload } from 'kafkajs';
import { costUnitsToString } from '@tokenmeter/billing';
import { loadConfig } from '@tokenmeter/config';
import { createDatabase, hourlyRollups, PriceBookRepository, UsageEventsRepository, type NewUsageEventRow } from '@tokenmeter/db';
import { Prisma, type PrismaClient } from '@tokenmeter/db/generated/prisma/client';
import { PriceBookCache, UsageIngestor } from '@tokenmeter/ingest';

const PEER_SESSION_TIMEOUT_MS = 300_000;

const log = (msg: string) => process.stderr.write(`[peer-ingestor ${process.pid}] ${msg}\n`);

async function main(): Promise<void> {
  const config = loadConfig();
  const db = createDatabase(config.databaseUrl, config.databasePoolSize);
  // prepare() only; the repository is what UsageIngestor needs to be built and is never written through here.
  const ingestor = new UsageIngestor(new UsageEventsRepository(db.pool), new PriceBookCache(new PriceBookRepository(db.pool)));
  const kafka = new Kafka({ clientId: 'tokenmeter-peer', brokers: config.kafka.brokers, logLevel: logLevel.WARN });
  const consumer = kafka.consumer({
    groupId: config.kafka.groupId,
    maxBytesPerPartition: 4 * 1024 * 1024,
    maxBytes: 16 * 1024 * 1024,
    // Prisma's side of one 5,000-event slice takes seconds of this process's CPU, and several lanes
    // share the one thread: at our 30 s the group dropped the member between heartbeats on a busy
    // box and every lane started over. Five minutes, so the peer is not measured redoing its work.
    sessionTimeout: PEER_SESSION_TIMEOUT_MS,
    rebalanceTimeout: PEER_SESSION_TIMEOUT_MS,
  });
  await consumer.connect();
  await consumer.subscribe({ topic: config.kafka.topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: config.ingest.partitionConcurrency,
    eachBatch: (payload) => handleBatch(payload, ingestor, db.prisma, config.ingest.chunkSize),
  });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // disconnect() waits for the slice in flight; do not outlive the benchmark by minutes.
    setTimeout(() => process.exit(1), 20_000).unref();
    consumer
      .disconnect()
      .then(() => db.close())
      .then(() => process.exit(0))
      .catch((err) => {
        log(`did not stop cleanly: ${String(err)}`);
        process.exit(1);
      });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/**
 * A fetched batch is up to 4 MiB per partition (~10,000 events); it is written in slices of
 * INGEST_CHUNK_SIZE messages (5,000, as ours), one transaction and one offset commit each: a whole
 * batch in one createMany took longer than the session timeout here, so the group dropped the member.
 */
async function handleBatch(payload: EachBatchPayload, ingestor: UsageIngestor, prisma: PrismaClient, chunkSize: number): Promise<void> {
  const { batch, resolveOffset, commitOffsetsIfNecessary, uncommittedOffsets, heartbeat, isRunning, isStale } = payload;
  for (let start = 0; start < batch.messages.length; start += chunkSize) {
    if (!isRunning() || isStale()) return;
    const slice = batch.messages.slice(start, start + chunkSize);
    const prepared = ingestor.prepare(
      slice.map((m) => ({ value: m.value, key: m.key?.toString('utf8') ?? null, kafka: { topic: batch.topic, partition: batch.partition, offset: m.offset } })),
      'kafka',
      await ingestor.pricingContext(),
    );
    if (prepared.rejections.length > 0) log(`${prepared.rejections.length} rejected events skipped (no dead-letter topic in the peer)`);
    await writeBatch(prisma, prepared.rows, heartbeat);
    resolveOffset(slice[slice.length - 1].offset);
    await commitOffsetsIfNecessary(uncommittedOffsets());
    await heartbeat();
  }
}

/** `heartbeat`: kafkajs' own, sent at most every heartbeat interval however often it is called. */
async function writeBatch(prisma: PrismaClient, rows: NewUsageEventRow[], heartbeat: () => Promise<void>): Promise<void> {
  if (rows.length === 0) return;
  const pricedAt = new Date();
  // A slice of 5,000 events with ~half as many rollup groups takes longer than Prisma's default
  // 5 s transaction timeout, and heartbeats are due in between, on a busy box.
  await prisma.$transaction(
    async (tx) => {
      await tx.account.createMany({ data: [...new Set(rows.map((r) => r.accountId))].map((id) => ({ id })), skipDuplicates: true });
      const data = rows.map((r) => eventData(r, pricedAt));
      const created = await tx.usageEvent.createManyAndReturn({ data, skipDuplicates: true, select: { eventId: true } });
      // A redelivery inside the batch is inserted (and returned) once: roll up its first copy only.
      const newIds = new Set(created.map((c) => c.eventId));
      const newRows = rows.filter((r) => newIds.delete(r.eventId));
      await heartbeat();
      let upserts = 0;
      for (const g of hourlyRollups(newRows)) {
        if (++upserts % 100 === 0) await heartbeat();
        const measures = {
          requests: g.requests,
          unpricedRequests: g.unpriced_requests,
          inputTokens: g.input_tokens,
          outputTokens: g.output_tokens,
          cacheReadTokens: g.cache_read_tokens,
          cacheWriteTokens: g.cache_write_tokens,
          reasoningTokens: g.reasoning_tokens,
          inputCostUsd: costUnitsToString(g.input_cost_usd),
          outputCostUsd: costUnitsToString(g.output_cost_usd),
          cacheReadCostUsd: costUnitsToString(g.cache_read_cost_usd),
          cacheWriteCostUsd: costUnitsToString(g.cache_write_cost_usd),
          costUsd: costUnitsToString(g.cost_usd),
        };
        const key = { accountId: g.account_id, apiKeyId: g.api_key_id, model: g.model, hour: new Date(g.hour) };
        await tx.usageHourly.upsert({
          where: { accountId_apiKeyId_model_hour: key },
          create: { ...key, ...measures },
          update: Object.fromEntries(Object.entries(measures).map(([column, delta]) => [column, { increment: delta }])),
        });
      }
    },
    { timeout: PEER_SESSION_TIMEOUT_MS, maxWait: PEER_SESSION_TIMEOUT_MS },
  );
}

function eventData(r: NewUsageEventRow, pricedAt: Date): Prisma.UsageEventCreateManyInput {
  const c = r.costs;
  return {
    eventId: r.eventId,
    accountId: r.accountId,
    apiKeyId: r.apiKeyId,
    model: r.model,
    requestId: r.requestId,
    occurredAt: r.occurredAt,
    inputTokens: r.inputTokens,
    outputTokens: r.outputTokens,
    cacheReadTokens: r.cacheReadTokens,
    cacheWriteTokens: r.cacheWriteTokens,
    reasoningTokens: r.reasoningTokens,
    usageRaw: JSON.parse(r.usageRawJson) as Prisma.InputJsonValue,
    usageFormat: r.usageFormat,
    metadata: r.metadataJson === null ? Prisma.DbNull : (JSON.parse(r.metadataJson) as Prisma.InputJsonValue),
    payloadHash: r.payloadHash,
    priceVersionId: r.priceVersionId === null ? null : BigInt(r.priceVersionId),
    priceOverrideId: r.priceOverrideId === null ? null : BigInt(r.priceOverrideId),
    inputCostUsd: c && costUnitsToString(c.input),
    outputCostUsd: c && costUnitsToString(c.output),
    cacheReadCostUsd: c && costUnitsToString(c.cacheRead),
    cacheWriteCostUsd: c && costUnitsToString(c.cacheWrite),
    costUsd: c && costUnitsToString(c.total),
    pricedAt: c && pricedAt,
    flags: r.flags,
    source: r.source,
  };
}

main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
