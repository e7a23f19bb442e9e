import cluster, { type Worker } from 'node:cluster';
import type { Server } from 'node:http';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from '@tokenmeter/config';
import { startMetricsServer } from './ingestor-metrics';

/** A process that dies sooner than this after starting counts as failing: its restart waits longer. */
const HEALTHY_UPTIME_MS = 30_000;
const MAX_RESTART_DELAY_MS = 30_000;

/**
 * INGESTOR_PROCESSES > 1: this (primary) process runs that many ingestor processes with
 * node:cluster and does nothing else itself. Each is an ordinary member of the consumer group,
 * so Kafka spreads the partitions over them and exactly-once holds as it does for separate
 * machines. The primary:
 * - serves GET /metrics on the ingestor's metrics port, summing the processes' metrics
 *   (prom-client's AggregatorRegistry; each process answers over the cluster IPC channel);
 * - restarts a process that exits on its own (after 1 s, doubling up to 30 s while they keep
 *   dying young), as a supervisor would: what it had not committed is simply redelivered;
 * - on SIGTERM/SIGINT passes SIGTERM to every process, waits until each has finished its chunk,
 *   committed and left the group, then exits 0 (1 if any of them did not exit cleanly).
 * If the primary itself is killed outright, the processes lose their IPC channel and exit
 * (node:cluster's behaviour); as with any crash, Kafka redelivers what was not committed.
 */
export async function superviseIngestors(processes: number, metricsPort: number, log: Logger): Promise<void> {
  const aggregator = new AggregatorRegistry();
  const server: Server | undefined = await startMetricsServer(
    { metrics: () => aggregator.clusterMetrics(), contentType: aggregator.contentType },
    metricsPort,
    log,
  );
  let stopping = false;
  let failedExits = 0;
  let restartDelayMs = 1000;
  const startedAt = new Map<Worker, number>();

  const fork = () => {
    if (stopping) return;
    const worker = cluster.fork();
    startedAt.set(worker, Date.now());
  };

  cluster.on('exit', (worker, code, signal) => {
    const uptimeMs = Date.now() - (startedAt.get(worker) ?? Date.now());
    startedAt.delete(worker);
    if (stopping) {
      if (code !== 0) failedExits++;
      log.info({ pid: worker.process.pid, code, signal }, 'ingestor process stopped');
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        const finish = () => process.exit(failedExits === 0 ? 0 : 1);
        if (server) server.close(finish);
        else finish();
      }
      return;
    }
    restartDelayMs = uptimeMs >= HEALTHY_UPTIME_MS ? 1000 : Math.min(MAX_RESTART_DELAY_MS, restartDelayMs * 2);
    log.error({ pid: worker.process.pid, code, signal, restartInMs: restartDelayMs }, 'ingestor process exited; starting another');
    setTimeout(fork, restartDelayMs);
  });

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, processes: Object.keys(cluster.workers ?? {}).length }, 'ingestor stopping');
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    if (workers.length === 0) process.exit(0);
    // SIGTERM, whatever we received: each process finishes its chunk and leaves the group.
    for (const worker of workers) worker.process.kill('SIGTERM');
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  for (let i = 0; i < processes; i++) fork();
  log.info({ pid: process.pid, processes }, 'ingestor started');
}
