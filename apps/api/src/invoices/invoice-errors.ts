import { ConflictError, DomainError, NotFoundError, ValidationError } from '@tokenmeter/billing';
import { StripeCallError } from '@tokenmeter/stripe';
import { ApiError } from '../common/api-error';

/** Domain and Stripe failures of the invoicing services as API errors; anything else is rethrown. */
export async function mapInvoicingErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof NotFoundError) throw new ApiError(404, 'not_found', err.message);
    if (err instanceof ValidationError) throw new ApiError(400, 'validation_failed', err.message, { field: err.field });
    if (err instanceof ConflictError) throw new ApiError(409, 'conflict', err.message);
    if (err instanceof DomainError) throw new ApiError(400, err.code, err.message);
    if (err instanceof StripeCallError) throw new ApiError(502, 'stripe_error', err.message, { retriable: err.retriable });
    throw err;
  }
}
