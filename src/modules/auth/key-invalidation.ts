/**
 * Tells every replica that a key changed: locally the cache entry is dropped at once, other
 * replicas hear it over the replica bus. When the bus becomes live again after a gap (Redis was
 * down, the subscription dropped) the whole cache is cleared, since announcements may have been
 * missed meanwhile.
 */
import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { ReplicaBus } from '../../stores/replica-bus/replica-bus';
import { KeyCache } from './key-cache';

@Injectable()
export class KeyInvalidation implements OnModuleInit, OnModuleDestroy {
  private readonly unsubscribes: (() => void)[] = [];

  constructor(
    private readonly cache: KeyCache,
    private readonly bus: ReplicaBus,
  ) {}

  onModuleInit(): void {
    this.unsubscribes.push(
      this.bus.subscribe('key-changed', (id) => this.cache.invalidate(id)),
      this.bus.onResync(() => this.cache.clear()),
    );
  }

  onModuleDestroy(): void {
    for (const unsubscribe of this.unsubscribes) unsubscribe();
  }

  /** The key `id` changed: drop it here at once and on every other replica. */
  announce(id: string): void {
    this.bus.publish('key-changed', id);
  }
}
