/**
 * Tells every replica that a key changed: locally the cache entry is dropped at once, other
 * replicas hear it over the replica bus, which also logs the change for an hour (API.md
 * "Authentication": a replica that lost its Redis connection catches up on what it missed).
 *
 * `current` says whether this replica's key cache can be trusted beyond the 5 s bound: only while
 * the bus is live and every change published since this replica was cut off has been read from
 * the log. When the bus becomes live again after a gap, the changes logged during the gap (plus a
 * margin for a cut noticed late) are invalidated one by one, so a Redis blip during a PostgreSQL
 * outage does not drop the keys that did not change; a gap longer than the log, or a log that
 * cannot be read, clears the whole cache instead.
 */
import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { APP_LOGGER, type AppLogger } from '../../infra/logging/logger';
import { LOG_KEEP_MS, ReplicaBus } from '../../stores/replica-bus/replica-bus';
import { KeyCache } from './key-cache';

/** Changes logged this long before the cut was noticed are read too (a dead connection is noticed late). */
const CUT_NOTICED_LATE_MS = 60_000;

@Injectable()
export class KeyInvalidation implements OnModuleInit, OnModuleDestroy {
  private readonly unsubscribes: (() => void)[] = [];
  /** Bumped by every resync: only the newest catch-up marks the cache current. */
  private resyncs = 0;
  private caughtUp = true;

  constructor(
    private readonly cache: KeyCache,
    private readonly bus: ReplicaBus,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
  ) {}

  onModuleInit(): void {
    this.unsubscribes.push(
      this.bus.subscribe('key-changed', (id) => this.cache.invalidate(id)),
      this.bus.onResync((gapMs) => void this.catchUp(gapMs)),
    );
  }

  onModuleDestroy(): void {
    for (const unsubscribe of this.unsubscribes) unsubscribe();
  }

  /** Every key change made anywhere has reached this replica's cache (else entries count 5 s at most). */
  get current(): boolean {
    return this.caughtUp && this.bus.live;
  }

  /** The key `id` changed: drop it here at once and on every other replica. */
  announce(id: string): void {
    this.bus.publish('key-changed', id);
  }

  private async catchUp(gapMs: number): Promise<void> {
    const resync = ++this.resyncs;
    this.caughtUp = false;
    const windowMs = gapMs + CUT_NOTICED_LATE_MS;
    let changed: string[] | null = null;
    if (windowMs < LOG_KEEP_MS) {
      try {
        changed = await this.bus.logged('key-changed', windowMs);
      } catch (error) {
        this.logger.warn({ err: error }, 'could not read the key changes missed while cut off; clearing the key cache');
      }
    }
    if (changed) for (const id of changed) this.cache.invalidate(id);
    else this.cache.clear();
    // An older catch-up still drops what it read (its gap may not be inside the newer window).
    if (resync === this.resyncs) this.caughtUp = true;
  }
}
