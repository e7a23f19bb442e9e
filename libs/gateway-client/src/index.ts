export { EVENT_ID_NAMESPACE, eventIdForRequest } from './event-id';
export { prepareUsageMessage, type UsageEventInput, type UsageMessage, type PreparedMessage } from './usage-message';
export {
  USAGE_TOPIC,
  PublishError,
  createUsagePublisher,
  type Accepted,
  type Rejected,
  type Unsent,
  type PublishResult,
  type UsagePublisher,
  type UsagePublisherOptions,
} from './usage-publisher';
export type { Rejection, RejectionCode } from '@tokenmeter/billing/usage-event';
