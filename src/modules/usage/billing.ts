/**
 * Who pays what for one request (API.md "Quotas"), decided from how its generation ended:
 * - a cache hit: one request unit, no tokens;
 * - a complete answer: the payer of a shared generation (see cache/flight.ts) pays the real
 *   usage; every other sharer pays one unit and no tokens, like a cache hit;
 * - the backend failed before any output: free, the unit is given back;
 * - output, then a cut (the client left, or the backend broke or timed out): the payer pays the
 *   unit, the prompt and the completion tokens produced up to the cut (estimated from below,
 *   see contracts/token-estimate.ts); a sharer that received output pays a unit, one that did not is free;
 * - the client left after the backend accepted the request, before any output: the unit and the
 *   prompt tokens (the backend did that work).
 * So no backend work goes unbilled, and the full cost of a generation is charged exactly once.
 */
import type { FlightOutcome } from '../cache/flight';
import type { TokenUsage } from '../../contracts/generation';

export interface Charge {
  /** One request unit is used; false: the reserved unit is given back and nothing is recorded. */
  unit: boolean;
  promptTokens: number;
  completionTokens: number;
  /** Of the prompt tokens, those the backend served from its prefix cache (the cached price). */
  cachedPromptTokens?: number;
  /** Counted as a cached request (cache hits and non-paying sharers). */
  cached: boolean;
}

export const FREE: Charge = { unit: false, promptTokens: 0, completionTokens: 0, cached: false };
export const CACHE_HIT: Charge = { unit: true, promptTokens: 0, completionTokens: 0, cached: true };

function paid(usage: TokenUsage): Charge {
  const { promptTokens, completionTokens, cachedPromptTokens } = usage;
  return {
    unit: true,
    promptTokens,
    completionTokens,
    ...(cachedPromptTokens ? { cachedPromptTokens } : {}),
    cached: false,
  };
}

/**
 * The charge for one request's part in a generation. `estimate(produced)` is the usage of a
 * generation cut after `produced` deltas (0: the prompt alone).
 */
export function chargeFor(outcome: FlightOutcome, estimate: (produced: number) => TokenUsage): Charge {
  if (outcome.kind === 'answer') return outcome.payer ? paid(outcome.answer.result.usage) : CACHE_HIT;
  if (!outcome.payer) return outcome.received > 0 ? CACHE_HIT : FREE;
  const { produced, accepted } = outcome.progress;
  if (produced > 0) return paid(estimate(produced));
  // Before any output a backend failure is free; a client leaving is not, once the backend has the request.
  if (outcome.kind === 'left' && accepted) return paid(estimate(0));
  return FREE;
}
