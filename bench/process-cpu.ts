/** CPU time of local processes from /proc, for the benchmarks' per-event and per-page costs. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ClientBase } from 'pg';

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU (user + system, all threads) a process has used so far, in ms; undefined when /proc cannot tell. */
export function cpuMsOf(pid: number): number | undefined {
  try {
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/**
 * CPU used so far by each Postgres backend connected to `database` (other than `client`'s own), by
 * pid. Postgres must run on this machine. Subtract two readings to get a window's cost: a backend
 * absent from the first reading connected during the window.
 */
export async function backendCpuMs(client: ClientBase, database: string): Promise<Map<number, number>> {
  const { rows } = await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]);
  return new Map(rows.flatMap(({ pid }) => {
    const ms = cpuMsOf(pid);
    return ms === undefined ? [] : [[pid, ms] as [number, number]];
  }));
}

/** CPU spent between two readings of backendCpuMs. */
export function backendCpuMsBetween(before: Map<number, number>, after: Map<number, number>): number {
  let ms = 0;
  for (const [pid, total] of after) ms += total - (before.get(pid) ?? 0);
  return ms;
}
