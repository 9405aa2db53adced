/** A settable clock for tests that cross a minute, a month or an expiry without waiting. */
import { Clock } from '../../src/contracts/clock';

export class FakeClock extends Clock {
  constructor(private current = new Date('2026-11-24T12:00:00.000Z')) {
    super();
  }

  now(): Date {
    return new Date(this.current);
  }

  set(at: Date | string): void {
    this.current = new Date(at);
  }

  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}
