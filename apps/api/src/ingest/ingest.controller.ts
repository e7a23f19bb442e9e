import { Controller, HttpCode, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { UsageIngestor, type IngestOutcome } from '@tokenmeter/ingest';
import { Public } from '../auth/principal';
import { ApiAnswer } from '../common/openapi';
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

const eventId = z.string().describe('The event_id of the event');
const IngestResultSchema = z.discriminatedUnion('status', [
  z
    .object({
      index: z.number().int().nonnegative().describe('Position of the event in the request'),
      event_id: eventId,
      status: z.literal('accepted'),
      priced: z.boolean().describe('false: no price in force at occurred_at (stored unpriced; POST /admin/reprice prices it later)'),
      flags: z.array(z.string()).describe('Audit flags, e.g. exceeds_context_window, exceeds_max_output'),
    })
    .strict(),
  z.object({ index: z.number().int().nonnegative(), event_id: eventId, status: z.literal('duplicate').describe('Already stored, same payload: not counted twice') }).strict(),
  z
    .object({
      index: z.number().int().nonnegative(),
      event_id: eventId,
      status: z.literal('conflict').describe('event_id already stored with a different payload: the first one stands, this one is kept in GET /admin/event-conflicts'),
      reason: z.string(),
    })
    .strict(),
  z
    .object({
      index: z.number().int().nonnegative(),
      event_id: z.string().nullable().describe('null when the event has no usable event_id'),
      status: z.literal('rejected').describe('Refused by the event contract; kept in GET /admin/rejected-events'),
      code: z.string().describe('invalid_json, schema, invariant, too_far_in_future, metadata_too_large or storage_error'),
      reason: z.string(),
    })
    .strict(),
]);
export type IngestResultItem = z.input<typeof IngestResultSchema>;

const IngestAnswerSchema = z
  .object({
    results: z.array(IngestResultSchema).describe('One result per event, in request order'),
    summary: z
      .object({
        accepted: z.number().int().nonnegative(),
        duplicate: z.number().int().nonnegative(),
        conflict: z.number().int().nonnegative(),
        rejected: z.number().int().nonnegative(),
      })
      .strict(),
  })
  .strict();

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
  @ApiAnswer(IngestAnswerSchema, 200, 'One result per event, in request order')
  async ingest(@ValidBody(ingestBody) { events }: z.output<typeof ingestBody>): Promise<z.input<typeof IngestAnswerSchema>> {
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
