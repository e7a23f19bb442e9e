import { Controller, Get, Inject } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { Kafka } from 'kafkajs';
import { DATABASE, type Database } from '@tokenmeter/db';
import { Public } from '../auth/principal';

@ApiTags('health')
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @Inject(DATABASE) private readonly db: Database,
    private readonly kafka: Kafka,
  ) {}

  /** The process is up; says nothing about its dependencies. */
  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Ready to serve: the database answers and a Kafka broker answers. 503 otherwise. */
  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check([
      async () => {
        const session = this.indicators.check('database');
        try {
          await this.db.pool.query('SELECT 1');
          return session.up();
        } catch (err) {
          return session.down({ message: (err as Error).message });
        }
      },
      async () => {
        const session = this.indicators.check('kafka');
        const admin = this.kafka.admin();
        try {
          await admin.connect();
          const cluster = await admin.describeCluster();
          return session.up({ brokers: cluster.brokers.length });
        } catch (err) {
          return session.down({ message: (err as Error).message });
        } finally {
          await admin.disconnect().catch(() => undefined);
        }
      },
    ]);
  }
}
