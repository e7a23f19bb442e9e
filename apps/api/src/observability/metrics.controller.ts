import { Controller, Get, Header } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { Public } from '../auth/principal';
import { HttpMetrics } from './http-metrics';

/** Prometheus scrape endpoint for the API process (the ingestor serves its own, see apps/ingestor). */
@ApiTags('health')
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: HttpMetrics) {}

  @Get()
  @Public()
  @ApiOperation({ summary: 'Prometheus metrics of the API process (HTTP latency by route, ...); no key needed' })
  @ApiResponse({
    status: 200,
    description: 'Prometheus text exposition format 0.0.4 (Content-Type: text/plain; version=0.0.4; charset=utf-8)',
    content: { 'text/plain': { schema: { type: 'string' } } },
  })
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  scrape(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}
