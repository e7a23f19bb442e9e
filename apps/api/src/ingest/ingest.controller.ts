import { Controller, HttpCode, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { UsageIngestor, type IngestOutcome } from '@tokenmeter/ingest';
import { Public } from '../auth/principal';
import { ValidBody } from '../common/validation';
import { IngestTokenGuard } from './ingest-token.guard';

export const MAX_EVENTS_PER_REQUEST = 1000;

// Each event is judged on its own by the event contract (a bad one is `rejected` in the results,
// never a 400 for the batch); the batch itself must be 1 to 1000 of them.
const ingestBody = z.object({
  events: z
    .array(z.unknown(), { invalid_type_error: 'must be an array of events' })
    .min(1, `must hold 1 to ${MAX_EVENTS_PER_REQUEST} events`)
    .max(MAX_EVENTS_PER_REQUEST, `must hold 1 to ${MAX_EVENTS_PER_REQUEST} events`)
    .describe('Usage events as in docs/event-contract.md'),
});

export interface IngestResultItem {
  index: number;
  event_id: string | null;
  status: 'accepted' | 'duplicate' | 'conflict' | 'rejected';
  priced?: boolean;
  flags?: string[];
  code?: string;
  reason?: string;
}

@ApiTags('ingest')
@ApiBearerAuth()
// The gateway authenticates with the ingest token (IngestTokenGuard), not with an API key.
@Public()
@Controller('v1/events')
@UseGuards(IngestTokenGuard)
export class IngestController {
  constructor(private readonly ingestor: UsageIngestor) {}

  /**
   * Same validation, dedupe and pricing path as the Kafka consumer. Always 200 for a well-formed
   * batch: each event gets its own verdict, so one bad event never hides the others' results.
   */
  @Post()
  @HttpCode(200)
  @ApiOperation({ summary: 'Ingest a batch of up to 1000 usage events' })
  @ApiOkResponse({ description: 'One result per event, in request order' })
  async ingest(@ValidBody(ingestBody) { events }: z.output<typeof ingestBody>): Promise<{ results: IngestResultItem[]; summary: Record<string, number> }> {
    const outcomes = await this.ingestor.ingest(
      events.map((value) => ({ value, key: null })),
      'http',
    );
    const results = outcomes.map(toResultItem);
    const summary = { accepted: 0, duplicate: 0, conflict: 0, rejected: 0 };
    for (const r of results) summary[r.status]++;
    return { results, summary };
  }
}

function toResultItem(outcome: IngestOutcome, index: number): IngestResultItem {
  switch (outcome.status) {
    case 'accepted':
      return { index, event_id: outcome.eventId, status: 'accepted', priced: outcome.priced, flags: outcome.flags };
    case 'duplicate':
      return { index, event_id: outcome.eventId, status: 'duplicate' };
    case 'conflict':
      return { index, event_id: outcome.eventId, status: 'conflict', reason: outcome.reason };
    case 'rejected':
      return { index, event_id: outcome.eventId, status: 'rejected', code: outcome.code, reason: outcome.reason };
  }
}
