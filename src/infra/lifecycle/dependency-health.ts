/**
 * One shared dependency's availability as the request path sees it (Redis, PostgreSQL): a
 * circuit breaker fed by real call outcomes. After an outage-class failure the dependency counts
 * as down and calls fail at once with DependencyDown (callers use their fallback or answer 503)
 * instead of each waiting for its own timeout; a background probe brings it back as soon as the
 * dependency answers again. Errors the dependency itself reports (a SQL error, a Redis reply
 * error) prove it is up and pass through unchanged.
 */

/** Thrown instead of calling a dependency that is down. */
export class DependencyDown extends Error {
  override readonly name = 'DependencyDown';
  constructor(
    readonly dependency: string,
    options?: { cause?: unknown },
  ) {
    super(`${dependency} is unavailable`, options);
  }
}

export interface DependencyHealthOptions {
  /** Answers when the dependency works again; rejects otherwise (bounded by the caller's own timeout). */
  probe: () => Promise<void>;
  /** Whether an error means the dependency is unreachable or hung (rather than a failed command). */
  isOutage: (error: unknown) => boolean;
  /** Time between probes while down. */
  probeIntervalMs: number;
  /** Told of every change, for logs and readiness. */
  onChange?: (up: boolean, cause: unknown) => void;
}

export class DependencyHealth {
  private isUp = true;
  private probeTimer: NodeJS.Timeout | null = null;
  private probing = false;
  private closed = false;
  private readonly listeners = new Set<(up: boolean) => void>();

  constructor(
    readonly name: string,
    private readonly options: DependencyHealthOptions,
  ) {}

  get up(): boolean {
    return this.isUp;
  }

  /** Called with the new state on every change (e.g. a key cache resyncing when Redis is back). */
  subscribe(listener: (up: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Runs `operation` unless the dependency is down (then throws DependencyDown at once). An
   * outage-class failure marks it down and is rethrown as DependencyDown.
   */
  async call<T>(operation: () => Promise<T>): Promise<T> {
    if (!this.isUp) throw new DependencyDown(this.name);
    try {
      return await operation();
    } catch (error) {
      if (!this.options.isOutage(error)) throw error;
      this.markDown(error);
      throw new DependencyDown(this.name, { cause: error });
    }
  }

  /** Like call(), but answers with `fallback()` whenever the dependency is down or fails. */
  async attempt<T>(operation: () => Promise<T>, fallback: () => T | Promise<T>): Promise<T> {
    if (!this.isUp) return fallback();
    try {
      return await operation();
    } catch (error) {
      if (this.options.isOutage(error)) this.markDown(error);
      return fallback();
    }
  }

  markDown(cause: unknown): void {
    if (this.closed) return;
    if (this.isUp) {
      this.isUp = false;
      this.changed(false, cause);
    }
    this.scheduleProbe();
  }

  /** Stops probing (shutdown). */
  close(): void {
    this.closed = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = null;
  }

  private scheduleProbe(): void {
    if (this.probeTimer || this.probing || this.closed) return;
    this.probeTimer = setTimeout(() => void this.runProbe(), this.options.probeIntervalMs);
    this.probeTimer.unref();
  }

  private async runProbe(): Promise<void> {
    this.probeTimer = null;
    this.probing = true;
    try {
      await this.options.probe();
      this.probing = false;
      if (!this.isUp && !this.closed) {
        this.isUp = true;
        this.changed(true, null);
      }
    } catch {
      this.probing = false;
      this.scheduleProbe();
    }
  }

  private changed(up: boolean, cause: unknown): void {
    this.options.onChange?.(up, cause);
    for (const listener of this.listeners) listener(up);
  }
}
