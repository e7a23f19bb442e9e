/** CPU used by the API process and by its Postgres backends during a measured window (bench:web, bench:api). */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { withClient } from './api-dataset';

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU (user + system, all threads) a process has used so far, in ms; undefined when /proc cannot tell. */
function cpuMsOf(pid: number): number | undefined {
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
 * CPU spent during a window by the API process and by the Postgres backends serving the data
 * set's database (its pool's connections): the cost of a page on each side, whatever else the
 * machine runs at the time (wall-clock latency is not). Postgres must be local for the second.
 */
export class CpuMeter {
  constructor(
    private readonly apiPid: number,
    private readonly databaseUrl: string,
    private readonly database: string,
  ) {}
  private async backends(): Promise<Map<number, number>> {
    const pids = await withClient(this.databaseUrl, async (c) =>
      (await c.query('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [this.database])).rows.map((r) => Number(r.pid)),
    );
    return new Map(pids.flatMap((pid) => {
      const ms = cpuMsOf(pid);
      return ms === undefined ? [] : [[pid, ms] as [number, number]];
    }));
  }
  async start(): Promise<() => Promise<{ apiMs: number | null; postgresMs: number | null }>> {
    const api0 = cpuMsOf(this.apiPid);
    const pg0 = await this.backends();
    return async () => {
      const api1 = cpuMsOf(this.apiPid);
      const pg1 = await this.backends();
      let postgresMs = 0;
      for (const [pid, ms] of pg1) postgresMs += ms - (pg0.get(pid) ?? 0);
      return { apiMs: api0 === undefined || api1 === undefined ? null : api1 - api0, postgresMs: pg1.size === 0 ? null : postgresMs };
    };
  }
}
