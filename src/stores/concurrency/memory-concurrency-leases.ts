/** Concurrency leases of this process: one replica, or any replica while Redis is down. */
import { ConcurrencyLeases, type LeaseGrant } from './concurrency-leases';

export class MemoryConcurrencyLeases extends ConcurrencyLeases {
  private readonly counts = new Map<string, number>();

  async inFlight(keyId: string): Promise<number> {
    return this.counts.get(keyId) ?? 0;
  }

  async acquire(keyId: string, limit: number): Promise<LeaseGrant> {
    const count = this.counts.get(keyId) ?? 0;
    if (count >= limit) return { granted: false, inFlight: count };
    this.counts.set(keyId, count + 1);
    let released = false;
    return {
      granted: true,
      inFlight: count + 1,
      release: () => {
        if (released) return;
        released = true;
        const left = (this.counts.get(keyId) ?? 1) - 1;
        if (left > 0) this.counts.set(keyId, left);
        else this.counts.delete(keyId); // idle keys take no memory
      },
    };
  }
}
