/** CPU used by the API process and by its Postgres backends during a measured window (bench:web, bench:api). */
import { withClient } from './api-dataset';
import { backendCpuMs, backendCpuMsBetween, cpuMsOf } from './process-cpu';

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
  private backends(): Promise<Map<number, number>> {
    return withClient(this.databaseUrl, (c) => backendCpuMs(c, this.database));
  }
  async start(): Promise<() => Promise<{ apiMs: number | null; postgresMs: number | null }>> {
    const api0 = cpuMsOf(this.apiPid);
    const pg0 = await this.backends();
    return async () => {
      const api1 = cpuMsOf(this.apiPid);
      const pg1 = await this.backends();
      return { apiMs: api0 === undefined || api1 === undefined ? null : api1 - api0, postgresMs: pg1.size === 0 ? null : backendCpuMsBetween(pg0, pg1) };
    };
  }
}
