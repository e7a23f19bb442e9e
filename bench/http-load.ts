/** The closed-loop load of the read-side benchmarks: N clients, each sending its next request as soon as the last one is answered. */
import { Agent } from 'node:http';

export interface LoadSample {
  /** Client-side latency, request sent to body fully received. */
  ms: number;
  ok: boolean;
}

/** `send` answers one sample per request and does not throw (a failed request is a sample with ok: false). */
export async function closedLoop<S extends LoadSample>(concurrency: number, seconds: number, send: () => Promise<S>): Promise<S[]> {
  const samples: S[] = [];
  const until = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < until) samples.push(await send());
    }),
  );
  return samples;
}

/**
 * `concurrency` keep-alive clients sharing one agent, each request timed here: `send` says whether
 * it succeeded (plus whatever else a sample keeps) and does not throw.
 */
export async function timedKeepAliveLoop<X extends { ok: boolean }>(
  concurrency: number,
  seconds: number,
  send: (agent: Agent) => Promise<X>,
): Promise<(X & LoadSample)[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  try {
    return await closedLoop(concurrency, seconds, async () => {
      const t = process.hrtime.bigint();
      const sample = await send(agent);
      return { ...sample, ms: Number(process.hrtime.bigint() - t) / 1e6 };
    });
  } finally {
    agent.destroy();
  }
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export const round2 = (x: number) => Math.round(x * 100) / 100;
