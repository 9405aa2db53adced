/**
 * Request work that must finish before the database closes: a generation's billing runs after
 * its client may be gone (a stream cut when the shutdown grace ends), and its usage must still
 * reach the ledger. The graceful shutdown waits for this work, bounded, before closing the app.
 */
import { Injectable } from '@nestjs/common';

@Injectable()
export class InFlightWork {
  private readonly running = new Set<Promise<unknown>>();

  get size(): number {
    return this.running.size;
  }

  /** Returns `work`, tracked until it settles. */
  track<T>(work: Promise<T>): Promise<T> {
    this.running.add(work);
    const forget = () => this.running.delete(work);
    work.then(forget, forget);
    return work;
  }

  /** Resolves when every tracked piece of work has settled, or after `boundMs`; true if all settled. */
  async settled(boundMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const all = Promise.allSettled([...this.running]).then(() => true);
    const bound = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), boundMs)));
    const result = await Promise.race([all, bound]);
    clearTimeout(timer);
    return result;
  }
}
