/**
 * Admission control and routing for one model (API.md 503 `overloaded`, CONFIG.md
 * `max_in_flight`, `queue`, `load_balancing`), in this replica:
 *
 * - Each upstream holds at most its max_in_flight of this replica's requests. A request that
 *   finds no usable upstream with room waits in the FairQueue (priority, then fair across keys);
 *   each finished request hands its slot to the next waiter at once.
 * - A full queue, or max_wait_ms spent waiting, is 503 overloaded with Retry-After. When the
 *   queue is full an arrival displaces the newest waiter of the key holding the most places at
 *   its priority or below (FairQueue.displaceFor), unless that is its own key. A waiter whose
 *   client leaves is taken out of the queue at once; it never reached a backend, so it costs
 *   nothing.
 * - A half-open upstream takes its one probe and nothing else until the probe answers (its
 *   release dispatches the queue again); while waiters wait on open breakers only, a timer
 *   dispatches them the moment the first cooldown ends.
 * - The upstream a request gets is the first with room in the model's load-balancing order
 *   (least_outstanding, weighted, prefix_affinity); an attempt that fails moves to the next one
 *   with room, then to the fallback models' upstreams with room (never through their queues).
 * - Without max_in_flight nothing ever waits: admission is a pick and two counter updates.
 *
 * The queue lives in this process. With Redis the bound is also deployment-wide: an admitted
 * request then holds a lease of its upstream (upstream-leases.ts; Admission.shareBound waits
 * for one within max_wait_ms), and a failover takes the next upstream only with a lease.
 *
 * One cohesive thing at 340 lines: the scheduler and the Admission it hands out share one
 * invariant (a slot is reserved exactly while an Admission holds it, its lease with it), which
 * is kept by reading both together.
 */
import type { ModelConfig } from '../../contracts/model-config';
import type { GenerationParams } from '../../contracts/generation';
import type { Priority, SchedulingClass } from '../../contracts/scheduling';
import type { Candidate } from './model-registry';
import { WeightedOrder } from './upstream-order';
import { FairQueue } from './fair-queue';
import { affinityOrder, affinityText, PrefixPlacement } from './prefix-affinity';
import { overloaded, type ShedReason } from './scheduling.errors';
import type { UpstreamSlot } from './upstream-slot';
import type { LeaseRelease, UpstreamLeases } from './upstream-leases';

/** What admission reports, for metrics (kept out of this file so it does no I/O). */
export interface SchedulingEvents {
  /** A request of a model with max_in_flight was admitted after `seconds` in the queue (0: at once). */
  waited(model: string, priority: Priority, seconds: number): void;
  shed(model: string, reason: ShedReason): void;
}

interface Waiter {
  cls: SchedulingClass;
  params: GenerationParams;
  enqueuedAt: number;
  admit(admission: Admission): void;
  /** Taken out of the queue to make room for another arrival. */
  turnAway(error: Error): void;
}

/** Weight of the newest sample in the moving average of how long a request holds a slot. */
const HOLD_EWMA_ALPHA = 0.2;
const MAX_RETRY_AFTER_SECONDS = 60;

export class ModelScheduler {
  private readonly queue = new FairQueue<Waiter>();
  private readonly weighted: WeightedOrder<UpstreamSlot>;
  private readonly placement: PrefixPlacement | null;
  /** Some upstream has a max_in_flight: requests may wait. */
  readonly limited: boolean;
  private holdMsAverage = 0;
  /** Dispatches the queue when the first open breaker's cooldown ends (set only while waiters wait). */
  private cooldownTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly model: ModelConfig,
    readonly slots: readonly UpstreamSlot[],
    private readonly events: SchedulingEvents,
    /** The schedulers of the model's fallbacks, looked up when a request reaches them. */
    private readonly schedulerOf: (model: string) => ModelScheduler | undefined,
    /** With Redis: max_in_flight held across replicas too. */
    readonly leases: UpstreamLeases | null = null,
  ) {
    this.weighted = new WeightedOrder(
      slots,
      slots.map((slot) => slot.weight),
    );
    this.placement = model.loadBalancing === 'prefix_affinity' && slots.length > 1 ? new PrefixPlacement(slots) : null;
    this.limited = slots.some((slot) => slot.maxInFlight !== Infinity);
  }

  get queued(): number {
    return this.queue.size;
  }

  queuedOf(priority: Priority): number {
    return this.queue.sizeOf(priority);
  }

  /**
   * Admits a request: at once when an upstream has room (or none is usable at all: the attempt
   * then fails as before, or falls back), else after waiting its turn. Rejects with 503
   * overloaded, or with `signal`'s reason when the client leaves while waiting.
   */
  admit(cls: SchedulingClass, params: GenerationParams, signal: AbortSignal): Admission | Promise<Admission> {
    const order = this.order(params);
    let anyUsable = false;
    for (const slot of order) {
      // A probe under way decides soon: with a queue, wait for it rather than fail.
      if (!slot.usable && !(this.limited && slot.probing)) continue;
      anyUsable = true;
      if (slot.usable && slot.hasRoom && this.queue.size === 0) {
        if (this.limited) this.events.waited(this.model.name, cls.priority, 0);
        return new Admission(this, params, order, slot);
      }
    }
    if (!anyUsable) return new Admission(this, params, order, null);
    return this.wait(cls, params, signal);
  }

  /** The model's upstreams in the order its load-balancing policy prefers for this request. */
  order(params: GenerationParams): readonly UpstreamSlot[] {
    if (this.slots.length === 1) return this.slots;
    switch (this.model.loadBalancing) {
      case 'weighted':
        return this.weighted.next();
      case 'prefix_affinity':
        return affinityOrder(this.placement!, this.slots, affinityText(params));
      case 'least_outstanding':
        return leastOutstanding(this.weighted.next());
    }
  }

  /** Takes a slot on `slot` for an attempt. */
  reserve(slot: UpstreamSlot): void {
    slot.inFlight += 1;
  }

  /** An attempt on `slot` ended after `heldMs`: its slot goes to the next waiter. */
  release(slot: UpstreamSlot, heldMs: number): void {
    slot.inFlight -= 1;
    this.holdMsAverage =
      this.holdMsAverage === 0 ? heldMs : this.holdMsAverage + HOLD_EWMA_ALPHA * (heldMs - this.holdMsAverage);
    if (this.queue.size > 0) this.dispatch();
  }

  fallbackScheduler(name: string): ModelScheduler | undefined {
    return this.schedulerOf(name);
  }

  private wait(cls: SchedulingClass, params: GenerationParams, signal: AbortSignal): Promise<Admission> {
    const { maxLength, maxWaitMs } = this.model.queue;
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    if (this.queue.size >= maxLength) {
      const displaced = this.queue.displaceFor(cls.priority, cls.keyId);
      if (!displaced) return Promise.reject(this.shed('queue_full'));
      displaced.turnAway(this.shed('queue_full'));
    }
    return new Promise<Admission>((resolve, reject) => {
      const leave = () => this.queue.remove(cls.priority, cls.keyId, waiter);
      const onAbort = () => {
        if (!leave()) return;
        clearTimeout(timer);
        reject(signal.reason);
      };
      const timer = setTimeout(() => {
        if (!leave()) return;
        signal.removeEventListener('abort', onAbort);
        reject(this.shed('max_wait'));
      }, maxWaitMs);
      const waiter: Waiter = {
        cls,
        params,
        enqueuedAt: performance.now(),
        admit: (admission) => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          resolve(admission);
        },
        turnAway: (error) => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.queue.push(cls.priority, cls.keyId, cls.weight, waiter);
      // Room may have come back without a release (a breaker's cooldown ended).
      this.dispatch();
    });
  }

  /** Hands free slots to waiters, in the queue's order, while a usable upstream has room. */
  private dispatch(): void {
    while (this.queue.size > 0 && this.slots.some((slot) => slot.usable && slot.hasRoom)) {
      const waiter = this.queue.pop()!;
      const order = this.order(waiter.params);
      const slot = order.find((candidate) => candidate.usable && candidate.hasRoom)!;
      this.events.waited(this.model.name, waiter.cls.priority, (performance.now() - waiter.enqueuedAt) / 1000);
      waiter.admit(new Admission(this, waiter.params, order, slot));
    }
    this.watchCooldowns();
  }

  /** While requests wait, dispatches them when the first open breaker lets its probe through. */
  private watchCooldowns(): void {
    if (this.queue.size === 0 || this.cooldownTimer) return;
    let soonest: number | null = null;
    for (const slot of this.slots) {
      const left = slot.candidate.breaker.cooldownLeftMs;
      if (left !== null && slot.hasRoom && (soonest === null || left < soonest)) soonest = left;
    }
    if (soonest === null) return;
    this.cooldownTimer = setTimeout(() => {
      this.cooldownTimer = null;
      this.dispatch();
    }, soonest + 1);
    this.cooldownTimer.unref(); // the waiters' own max_wait timers keep what must run alive
  }

  /** A 503 overloaded for a request turned away (counted in the metrics). */
  shed(reason: ShedReason): Error {
    this.events.shed(this.model.name, reason);
    return overloaded(this.model.name, reason, this.retryAfterSeconds());
  }

  /** When a slot is likely free for a retry: the queue drained at the recent pace, 1..60 s. */
  private retryAfterSeconds(): number {
    let capacity = 0;
    for (const slot of this.slots) capacity += slot.usable ? Math.min(slot.maxInFlight, 1_000_000) : 0;
    if (capacity === 0 || this.holdMsAverage === 0) return 1;
    const drainMs = ((this.queue.size + 1) * this.holdMsAverage) / capacity;
    return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil(drainMs / 1000)));
  }
}

/**
 * Least outstanding requests relative to weight, engines with a backlog last; ties keep the
 * weighted round-robin order they came in (so idle upstreams share traffic by weight).
 */
function leastOutstanding(order: UpstreamSlot[]): UpstreamSlot[] {
  return order.sort(
    (a, b) =>
      Number(!a.usable) - Number(!b.usable) ||
      Number(a.backlogged) - Number(b.backlogged) ||
      a.outstanding / a.weight - b.outstanding / b.weight,
  );
}

/**
 * One admitted request's right to use upstreams: it holds at most one slot at a time (the
 * attempt under way). Release it once, when the call is over.
 */
interface Held {
  scheduler: ModelScheduler;
  slot: UpstreamSlot;
  since: number;
  /** Its lease in Redis (upstream-leases.ts), when the bound is shared. */
  lease: LeaseRelease | null;
}

export class Admission {
  private held: Held | null = null;

  constructor(
    private readonly scheduler: ModelScheduler,
    private readonly params: GenerationParams,
    private readonly order: readonly UpstreamSlot[],
    first: UpstreamSlot | null,
  ) {
    if (first) this.hold(scheduler, first);
  }

  /**
   * The upstreams to try, in order: the admitted one, the model's others with room, then each
   * fallback's with room (fallbacks whose own queue is not empty are not jumped). The caller
   * still skips those whose breaker refuses the attempt.
   */
  async *candidates(): AsyncGenerator<Candidate> {
    const first = this.held?.slot ?? null;
    if (first) yield first.candidate;
    for (const slot of this.order) {
      if (slot === first || !slot.hasRoom) continue;
      if (await this.holdShared(this.scheduler, slot)) yield slot.candidate;
    }
    for (const name of this.scheduler.model.fallbacks) {
      const fallback = this.scheduler.fallbackScheduler(name);
      if (!fallback || fallback.queued > 0) continue;
      for (const slot of fallback.order(this.params)) {
        if (slot.hasRoom && (await this.holdShared(fallback, slot))) yield slot.candidate;
      }
    }
  }

  /**
   * With a deployment-wide bound (Redis), one try for the admitted upstream's lease: true when it
   * is held now or none is needed; false: shareBound waits for it.
   */
  async tryShareBound(): Promise<boolean> {
    const held = this.held;
    const leases = held?.scheduler.leases;
    if (!held || held.lease || !leases?.bounds(held.slot)) return true;
    return this.keep(held, await leases.tryTake(held.scheduler.model.name, held.slot)) !== null;
  }

  /**
   * Waits for the admitted upstream's lease until `arrivedAt` (performance.now()) + max_wait_ms:
   * 503 overloaded past it, the signal's reason when the client leaves. The caller releases the
   * admission when this throws.
   */
  async shareBound(signal: AbortSignal, arrivedAt: number): Promise<void> {
    const held = this.held;
    const leases = held?.scheduler.leases;
    if (!held || held.lease || !leases?.bounds(held.slot)) return;
    const deadline = arrivedAt + held.scheduler.model.queue.maxWaitMs;
    const lease = this.keep(held, await leases.take(held.scheduler.model.name, held.slot, signal, deadline));
    if (!lease) throw held.scheduler.shed('max_wait');
  }

  /** Attaches `lease` to `held` if this admission still holds it (else lets it go). */
  private keep(held: Held, lease: LeaseRelease | null): LeaseRelease | null {
    if (!lease) return null;
    if (this.held === held) held.lease = lease;
    else lease(); // released meanwhile
    return lease;
  }

  /** Holds `slot` when it has room deployment-wide too (one try for its lease); false: skip it. */
  private async holdShared(scheduler: ModelScheduler, slot: UpstreamSlot): Promise<boolean> {
    let lease: LeaseRelease | null = null;
    if (scheduler.leases?.bounds(slot)) {
      lease = await scheduler.leases.tryTake(scheduler.model.name, slot);
      if (!lease) return false;
      if (!slot.hasRoom) {
        lease(); // taken in this replica while the lease was asked for
        return false;
      }
    }
    this.hold(scheduler, slot, lease);
    return true;
  }

  release(): void {
    const held = this.held;
    this.held = null;
    if (held) this.letGo(held);
  }

  /**
   * Takes `slot` (and its breaker's probe when it is half-open, so no other request is handed
   * it meanwhile) before letting the previous one go: the release may hand slots to waiters.
   */
  private hold(scheduler: ModelScheduler, slot: UpstreamSlot, lease: LeaseRelease | null = null): void {
    scheduler.reserve(slot);
    if (slot.candidate.breaker.state === 'half_open') slot.candidate.breaker.tryAcquire(this);
    const previous = this.held;
    this.held = { scheduler, slot, since: performance.now(), lease };
    if (previous) this.letGo(previous);
  }

  private letGo(held: Held): void {
    held.lease?.();
    held.slot.candidate.breaker.abandonProbe(this); // nothing if its attempt settled it
    held.scheduler.release(held.slot, performance.now() - held.since);
  }
}
