/**
 * One shared dependency's availability (Redis, PostgreSQL): the one state the request path and
 * /readyz both read (API.md "Health": they agree). A circuit breaker fed by real call outcomes:
 * after an outage-class failure (unreachable, a connection lost) — or `timeoutsToDown` timeouts
 * in a row: one slow statement is that statement's failure, not an outage — the dependency counts
 * as down and calls fail at once with DependencyDown (callers use their fallback or answer 503)
 * instead of each waiting for its own timeout; a background probe brings it back as soon as the
 * dependency answers again, and so does a readiness check that finds it answering (verify()).
 * Errors the dependency itself reports (a SQL error, a Redis reply error) prove it is up and pass
 * through unchanged.
 */

/** Thrown instead of calling a dependency that is down, or for a call that timed out. */
export class DependencyDown extends Error {
  override readonly name = 'DependencyDown';
  constructor(
    readonly dependency: string,
    options?: { cause?: unknown },
  ) {
    super(`${dependency} is unavailable`, options);
  }
}

/** What a failed call says about the dependency. */
export type FailureKind =
  /** Unreachable, hung, the connection lost: the dependency is down. */
  | 'outage'
  /** This call took too long: down only after several in a row. */
  | 'timeout'
  /** The dependency answered (with an error of the command's own): it is up. */
  | 'answer';

export interface DependencyHealthOptions {
  /** Answers when the dependency works again; rejects otherwise (bounded by the caller's own timeout). */
  probe: () => Promise<void>;
  classify: (error: unknown) => FailureKind;
  /** Timeouts in a row that make the dependency count as down (default 1: any timeout). */
  timeoutsToDown?: number;
  /** Time between probes while down. */
  probeIntervalMs: number;
  /** Told of every change, for logs. */
  onChange?: (up: boolean, cause: unknown) => void;
}

export interface VerifyOutcome {
  up: boolean;
  ms: number;
  /** Why it is down (never a URL). */
  reason?: string;
}

class VerifyTimeout extends Error {
  override readonly name = 'VerifyTimeout';
}

export class DependencyHealth {
  private isUp = true;
  private probeTimer: NodeJS.Timeout | null = null;
  private probing = false;
  private closed = false;
  private timeoutsInARow = 0;
  private verifying: Promise<void> | null = null;
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
   * outage (or the timeout that makes too many in a row) marks it down; an outage or a timeout is
   * rethrown as DependencyDown, the dependency's own answers unchanged. `timeoutsCount: false`
   * (background retries of one statement, which may wait on the same row lock again and again):
   * its timeouts say nothing about the dependency as a whole.
   */
  async call<T>(operation: () => Promise<T>, { timeoutsCount = true }: { timeoutsCount?: boolean } = {}): Promise<T> {
    if (!this.isUp) throw new DependencyDown(this.name);
    try {
      const value = await operation();
      this.timeoutsInARow = 0;
      return value;
    } catch (error) {
      if (!this.failed(error, timeoutsCount)) throw error;
      throw new DependencyDown(this.name, { cause: error });
    }
  }

  /** Like call(), but answers with `fallback()` whenever the dependency is down or fails. */
  async attempt<T>(operation: () => Promise<T>, fallback: () => T | Promise<T>): Promise<T> {
    if (!this.isUp) return fallback();
    try {
      const value = await operation();
      this.timeoutsInARow = 0;
      return value;
    } catch (error) {
      this.failed(error);
      return fallback();
    }
  }

  /**
   * Checks the dependency now with its probe, bounded by `timeoutMs` (readiness): a failure marks
   * it down, an answer brings it back up, so the state requests see is what this reports.
   * Concurrent checks share one probe.
   */
  async verify(timeoutMs: number): Promise<VerifyOutcome> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    this.verifying ??= this.options.probe().finally(() => (this.verifying = null));
    try {
      await Promise.race([
        this.verifying,
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new VerifyTimeout()), timeoutMs))),
      ]);
      this.timeoutsInARow = 0;
      if (!this.isUp && !this.closed) {
        this.isUp = true;
        this.changed(true, null);
      }
      return { up: true, ms: Math.round(performance.now() - started) };
    } catch (error) {
      this.markDown(error);
      const reason =
        error instanceof VerifyTimeout
          ? `timeout of ${timeoutMs}ms exceeded`
          : String((error as Error)?.message ?? error).slice(0, 200);
      return { up: false, ms: Math.round(performance.now() - started), reason };
    } finally {
      clearTimeout(timer);
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

  /** Counts a failed call; true when it was an outage or a timeout (the dependency did not answer). */
  private failed(error: unknown, timeoutsCount = true): boolean {
    const kind = this.options.classify(error);
    if (kind === 'answer') {
      this.timeoutsInARow = 0;
      return false;
    }
    if (kind === 'timeout' && !timeoutsCount) return true;
    if (kind === 'outage' || ++this.timeoutsInARow >= (this.options.timeoutsToDown ?? 1)) {
      this.timeoutsInARow = 0;
      this.markDown(error);
    }
    return true;
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
