/**
 * Whether the server is draining. Flipped once, by the graceful shutdown (server.ts), before
 * the listener closes: from then on /readyz answers 503 without checking anything, so load
 * balancers stop sending traffic while in-flight requests finish.
 */
import { Injectable } from '@nestjs/common';

@Injectable()
export class ShutdownState {
  private since: Date | null = null;

  get shuttingDown(): boolean {
    return this.since !== null;
  }

  /** When the shutdown began (null: it has not). */
  get beganAt(): Date | null {
    return this.since;
  }

  begin(): void {
    this.since ??= new Date();
  }
}
