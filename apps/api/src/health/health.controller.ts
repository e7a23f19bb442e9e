import { Controller, Get, Inject, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, HealthIndicatorService, type HealthCheckResult } from '@nestjs/terminus';
import type { Response } from 'express';
import { Kafka } from 'kafkajs';
import { z } from 'zod';
import { DATABASE, type Database } from '@tokenmeter/db';
import { Public } from '../auth/principal';
import { ApiAnswer } from '../common/openapi';

const LivenessSchema = z.object({ status: z.literal('ok') }).strict();

const dependency = z
  .object({
    status: z.enum(['up', 'down']),
    brokers: z.number().int().nonnegative().optional().describe('kafka, when up: brokers in the cluster'),
    message: z.string().optional().describe('When down: why'),
  })
  .strict();
const dependencies = z.object({ database: dependency, kafka: dependency });

/** The @nestjs/terminus report, for the two dependencies checked here. */
const ReadinessSchema = z
  .object({
    status: z.enum(['ok', 'error', 'shutting_down']),
    info: dependencies.partial().strict().describe('The dependencies that are up'),
    error: dependencies.partial().strict().describe('The dependencies that are down'),
    details: dependencies.strict().describe('Every dependency'),
  })
  .strict();
type ReadinessJson = z.input<typeof ReadinessSchema>;

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
  @ApiAnswer(LivenessSchema, 200, 'The process is up')
  live(): z.input<typeof LivenessSchema> {
    return { status: 'ok' };
  }

  /** Ready to serve: the database answers and a Kafka broker answers. 503 otherwise. */
  @Get('ready')
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  @ApiAnswer(ReadinessSchema, 200, 'Ready: the database and a Kafka broker answer')
  @ApiAnswer(ReadinessSchema, 503, 'Not ready (or shutting down); `error` names what is down')
  async ready(@Res() res: Response): Promise<void> {
    let report: HealthCheckResult;
    try {
      report = await this.health.check([
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
    } catch (err) {
      // terminus throws its report as a 503. Answered here: the global error filter would replace
      // it by the generic error shape, and the operator would no longer see WHAT is down.
      if (!(err instanceof ServiceUnavailableException)) throw err;
      res.status(503).json(err.getResponse() as ReadinessJson);
      return;
    }
    // terminus types the report as open records; the two indicators above give exactly this shape.
    res.status(200).json(report as ReadinessJson);
  }
}
