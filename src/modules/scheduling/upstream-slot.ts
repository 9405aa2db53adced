/**
 * One upstream as the scheduler sees it: the requests this replica has on it (its slots, bounded
 * by max_in_flight) and, for vLLM upstreams with `upstream_metrics`, what the engine itself last
 * reported (requests running and waiting, KV cache use), which also counts other replicas' load.
 */
import type { Candidate } from './model-registry';

/** What a vLLM engine reported on /metrics (see upstream-metrics.ts). */
export interface EngineLoad {
  running: number;
  waiting: number;
  /** 0..1; null when the engine does not report it. */
  kvCacheUsage: number | null;
  /** performance.now() of the scrape. */
  at: number;
}

/** A report older than this says nothing about the engine now (it stopped answering /metrics). */
export const ENGINE_LOAD_STALE_MS = 5000;
/** A KV cache this full makes the engine queue new sequences even with no request waiting yet. */
const KV_CACHE_FULL = 0.98;

export class UpstreamSlot {
  /** Requests this replica has on the upstream now (attempts, not queued waiters). */
  inFlight = 0;
  engine: EngineLoad | null = null;

  constructor(
    readonly candidate: Candidate,
    readonly weight: number,
    /** Infinity: no max_in_flight. */
    readonly maxInFlight: number,
  ) {}

  get label(): string {
    return this.candidate.provider.upstreamLabel;
  }

  get hasRoom(): boolean {
    return this.inFlight < this.maxInFlight;
  }

  /** Not skipped by its circuit breaker (a half-open upstream takes its one probe, then nothing until it answers). */
  get usable(): boolean {
    return this.candidate.breaker.available;
  }

  /** Its breaker's probe is under way: usable again (or open) once that answers. */
  get probing(): boolean {
    return this.candidate.breaker.probing;
  }

  private freshEngine(): EngineLoad | null {
    const engine = this.engine;
    return engine && performance.now() - engine.at < ENGINE_LOAD_STALE_MS ? engine : null;
  }

  /** The engine queues requests already: sending it more only lengthens its queue. */
  get backlogged(): boolean {
    const engine = this.freshEngine();
    return engine !== null && (engine.waiting > 0 || (engine.kvCacheUsage ?? 0) >= KV_CACHE_FULL);
  }

  /**
   * Requests the upstream holds: ours, or what the engine reported when that is more (other
   * replicas' requests; ours sent since the scrape are in inFlight).
   */
  get outstanding(): number {
    const engine = this.freshEngine();
    return engine ? Math.max(this.inFlight, engine.running + engine.waiting) : this.inFlight;
  }
}
