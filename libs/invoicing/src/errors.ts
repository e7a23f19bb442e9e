import { ConflictError } from '@tokenmeter/billing';

/** Closing now could miss events still on their way: ingestion has not passed period end + grace. */
export class IngestionIncompleteError extends ConflictError {
  constructor(
    readonly period: string,
    readonly requiredUntil: Date,
    readonly lagging: { partition: string; maxOccurredAt: string | null }[],
  ) {
    super(
      `ingestion is not complete past ${requiredUntil.toISOString()} for ${period}` +
        (lagging.length > 0 ? ` (lagging: ${lagging.map((l) => `${l.partition} at ${l.maxOccurredAt ?? 'nothing'}`).join(', ')})` : '') +
        '; wait, or close with force',
    );
  }
}
