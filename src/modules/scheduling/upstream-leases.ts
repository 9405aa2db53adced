/**
 * The deployment-wide half of `max_in_flight` (API.md "Scheduling"): with Redis, an attempt on
 * an upstream with a bound also holds a lease in Redis (the concurrency leases `max_concurrent`
 * uses: one sorted set per upstream, renewed while held, lapsing within their TTL when a
 * replica dies), so all replicas and workers together hold at most `max_in_flight` requests on
 * it. The local scheduler (model-scheduler.ts) still orders this replica's waiters (priority,
 * fairness) and bounds them locally; a request it admits then waits here for a lease, polling,
 * until its `max_wait_ms` (counted from its arrival) runs out: 503 `overloaded` like any wait.
 *
 * While Redis is down the leases fall back to in-process ones (StoresModule): each replica
 * counts alone, as API.md says. Without Redis there is nothing here: the local bound is the bound.
 */
import { sleep } from '../../contracts/sleep';
import type { ConcurrencyLeases } from '../../stores/concurrency/concurrency-leases';
import type { UpstreamSlot } from './upstream-slot';

/** Lets a lease go; idempotent. */
export type LeaseRelease = () => void;

/** Between two tries for a lease another replica holds: short, with jitter so replicas do not poll in step. */
const POLL_MIN_MS = 10;
const POLL_MAX_MS = 50;

export class UpstreamLeases {
  constructor(private readonly leases: ConcurrencyLeases) {}

  /** Whether `slot` needs a lease at all (it has a max_in_flight). */
  bounds(slot: UpstreamSlot): boolean {
    return slot.maxInFlight !== Infinity;
  }

  /** One try: the lease when the upstream has room deployment-wide, else null. */
  async tryTake(model: string, slot: UpstreamSlot): Promise<LeaseRelease | null> {
    const grant = await this.leases.acquire(ownerOf(model, slot), slot.maxInFlight);
    return grant.granted ? grant.release : null;
  }

  /**
   * Tries until a lease is granted, `signal` aborts (rejects with its reason) or `deadline`
   * (performance.now()) passes (null).
   */
  async take(model: string, slot: UpstreamSlot, signal: AbortSignal, deadline: number): Promise<LeaseRelease | null> {
    for (let attempt = 0; ; attempt += 1) {
      if (signal.aborted) throw signal.reason;
      const release = await this.tryTake(model, slot);
      if (release) {
        if (!signal.aborted) return release;
        release();
        throw signal.reason;
      }
      const left = deadline - performance.now();
      if (left <= 0) return null;
      const pause = Math.min(left, POLL_MIN_MS + Math.random() * Math.min(POLL_MAX_MS - POLL_MIN_MS, attempt * 10));
      await sleep(pause, signal);
    }
  }
}

/** The lease set of one upstream of one model (redis-keys.ts puts it under its own hash tag). */
function ownerOf(model: string, slot: UpstreamSlot): string {
  return `upstream/${model}/${slot.label}`;
}
