/** Rate-limit counts in this process: one replica, or any replica while Redis is down. */
import type { Clock } from '../../contracts/clock';
import { RateLimitCounters, type RateLimitHit } from './rate-limit-counters';
import { windowAt } from './rate-limit-window';

interface LocalWindow {
  index: number;
  count: number;
  tokens: number;
}

/** Above this many trackers, entries of past windows are dropped. */
const MAX_LOCAL_ENTRIES = 100_000;

export class MemoryRateLimitCounters extends RateLimitCounters {
  private readonly local = new Map<string, LocalWindow>();

  constructor(private readonly clock: Clock) {
    super();
  }

  async hit(tracker: string, windowMs: number): Promise<RateLimitHit> {
    const { index, resetInMs } = windowAt(this.clock.now().getTime(), windowMs);
    const entry = this.window(tracker, index);
    entry.count += 1;
    return { count: entry.count, tokens: entry.tokens, resetInMs };
  }

  async chargeTokens(tracker: string, windowMs: number, tokens: number): Promise<void> {
    if (tokens <= 0) return;
    this.window(tracker, windowAt(this.clock.now().getTime(), windowMs).index).tokens += tokens;
  }

  private window(tracker: string, index: number): LocalWindow {
    let entry = this.local.get(tracker);
    if (!entry || entry.index !== index) {
      if (!entry && this.local.size >= MAX_LOCAL_ENTRIES) this.evictBefore(index);
      entry = { index, count: 0, tokens: 0 };
      this.local.set(tracker, entry);
    }
    return entry;
  }

  private evictBefore(index: number): void {
    for (const [tracker, entry] of this.local) if (entry.index < index) this.local.delete(tracker);
  }
}
