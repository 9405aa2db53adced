/**
 * A circuit breaker per upstream, fed by real request outcomes: after `failures` failures in a
 * row (unreachable, timeout before any output, 5xx or garbage) the upstream is skipped for
 * `cooldownMs`; then exactly one request is let through as a probe, and its outcome closes the
 * breaker or opens it for another cooldown. A hung upstream so costs a few requests, not every
 * request routed to it. Outcomes that say nothing about the upstream (the client left, the
 * request itself was refused) do not count; an inconclusive probe lets the next request probe.
 * Time is wall time (performance.now), independent of the injectable Clock.
 */
import type { BreakerConfig } from '../../contracts/model-config';

export type BreakerState = 'closed' | 'half_open' | 'open';

export class UpstreamBreaker {
  private consecutiveFailures = 0;
  private openedAt = 0;
  private current: BreakerState = 'closed';
  private probeInFlight = false;
  /** Who took the probe (an Admission), so its own attempt may use it. */
  private probeOwner: object | null = null;

  /** `config` null: never opens (in-process engines). */
  constructor(
    private readonly config: BreakerConfig | null,
    private readonly onChange: (state: BreakerState) => void = () => undefined,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get state(): BreakerState {
    if (this.current === 'open' && this.now() - this.openedAt >= this.config!.cooldownMs) return 'half_open';
    return this.current;
  }

  /** A request could go to this upstream now: closed, or half-open with its one probe not yet taken. */
  get available(): boolean {
    const state = this.state;
    return state === 'closed' || (state === 'half_open' && !this.probeInFlight);
  }

  /** Half-open with its probe under way: nothing else goes there until it answers. */
  get probing(): boolean {
    return this.probeInFlight && this.state === 'half_open';
  }

  /** Milliseconds until an open breaker lets its probe through (0: now); null when not open. */
  get cooldownLeftMs(): number | null {
    if (this.current !== 'open') return null;
    return Math.max(0, this.openedAt + this.config!.cooldownMs - this.now());
  }

  /**
   * Whether a request may go to this upstream now (in half-open, only the one probe). The
   * scheduler takes the probe when it admits a request to a half-open upstream, with that
   * admission as `owner`, so nobody else is handed the upstream while the probe is pending.
   */
  tryAcquire(owner?: object): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (this.probeInFlight) return owner !== undefined && owner === this.probeOwner;
    if (state === 'open') return false;
    if (this.current !== 'half_open') this.set('half_open');
    this.probeInFlight = true;
    this.probeOwner = owner ?? null;
    return true;
  }

  /** `owner` took the probe but made no attempt (its client left first): the next request probes. */
  abandonProbe(owner: object): void {
    if (this.probeInFlight && this.probeOwner === owner) this.endProbe();
  }

  success(): void {
    this.consecutiveFailures = 0;
    this.endProbe();
    if (this.current !== 'closed') this.set('closed');
  }

  failure(): void {
    if (!this.config) return;
    this.endProbe();
    this.consecutiveFailures += 1;
    if (this.current === 'half_open' || this.consecutiveFailures >= this.config.failures) {
      this.openedAt = this.now();
      if (this.current !== 'open') this.set('open');
    }
  }

  /** An outcome that tells nothing about the upstream; a probe that ends so lets the next request probe. */
  inconclusive(): void {
    this.endProbe();
  }

  private endProbe(): void {
    this.probeInFlight = false;
    this.probeOwner = null;
  }

  private set(state: BreakerState): void {
    this.current = state;
    this.onChange(state);
  }
}
