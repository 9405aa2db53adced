/** Why a request was turned away by admission control (llm_requests_shed_total{reason}). */
import { AppError } from '../../contracts/app-error';
import type { ShedReason } from '../../infra/metrics/metric-names';

export type { ShedReason };

/** 503 overloaded, with when to retry: the model's queue is full or the request waited max_wait_ms. */
export function overloaded(model: string, reason: ShedReason, retryAfterSeconds: number): AppError {
  const why =
    reason === 'queue_full'
      ? `the queue of model "${model}" is full`
      : `model "${model}" could not take the request within its queue's max_wait_ms`;
  return new AppError('overloaded', `${why}; retry in ${retryAfterSeconds} s`, {
    figures: { retryAfterSeconds },
  });
}
