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

  /** Whether a request may go to this upstream now (in half-open, only the one probe). */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.probeInFlight) return false;
    if (this.current !== 'half_open') this.set('half_open');
    this.probeInFlight = true;
    return true;
  }

  success(): void {
    this.consecutiveFailures = 0;
    this.probeInFlight = false;
    if (this.current !== 'closed') this.set('closed');
  }

  failure(): void {
    if (!this.config) return;
    this.probeInFlight = false;
    this.consecutiveFailures += 1;
    if (this.current === 'half_open' || this.consecutiveFailures >= this.config.failures) {
      this.openedAt = this.now();
      if (this.current !== 'open') this.set('open');
    }
  }

  /** An outcome that tells nothing about the upstream; a probe that ends so lets the next request probe. */
  inconclusive(): void {
    this.probeInFlight = false;
  }

  private set(state: BreakerState): void {
    this.current = state;
    this.onChange(state);
  }
}
