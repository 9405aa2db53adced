/**
 * The context sequences of one engine as a pool: each request takes a free sequence or waits in
 * a bounded FIFO queue; when the queue is full the request fails at once with BackendBusyError.
 * Sequences of one context are evaluated together in shared batches.
 */
import type { LlamaChat, LlamaCompletion, LlamaContextSequence } from 'node-llama-cpp';
import { BackendBusyError, BackendUnreachableError } from '../../../contracts/backend-errors';

export interface Slot {
  sequence: LlamaContextSequence;
  completion: LlamaCompletion;
  /** For function calling; created on the slot's first request with tools. */
  chat?: LlamaChat;
}

interface Waiter {
  resolve(slot: Slot): void;
  reject(err: unknown): void;
}

export class SequencePool {
  private readonly free: Slot[] = [];
  private readonly waiters: Waiter[] = [];
  private total = 0;
  private open = false;

  constructor(private readonly maxQueue: number) {}

  /** Requests waiting for a sequence. */
  get queued(): number {
    return this.waiters.length;
  }

  /** Puts the engine's sequences in the pool and starts serving. */
  fill(slots: Slot[]): void {
    this.free.push(...slots);
    this.total += slots.length;
    this.open = true;
  }

  acquire(signal: AbortSignal): Promise<Slot> {
    // The engine may have been closed while this request prepared (grammar, template): a waiter
    // queued now would never be served.
    if (!this.open) return Promise.reject(new BackendUnreachableError('embedded engine is closed'));
    const slot = this.free.pop();
    if (slot) return Promise.resolve(slot);
    if (this.waiters.length >= this.maxQueue) {
      return Promise.reject(
        new BackendBusyError(
          `embedded engine is busy: ${this.total} generations running, ${this.waiters.length} queued (max ${this.maxQueue})`,
        ),
      );
    }
    return new Promise<Slot>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal.reason);
      };
      const waiter: Waiter = {
        resolve: (s) => {
          signal.removeEventListener('abort', onAbort);
          resolve(s);
        },
        reject: (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      this.waiters.push(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** A sequence the engine has let go of: to the next waiter, or back to the pool. */
  release(slot: Slot): void {
    if (!this.open) return;
    const next = this.waiters.shift();
    if (next) next.resolve(slot);
    else this.free.push(slot);
  }

  /** Stops serving: waiters get `error`, the sequences are forgotten (their context is disposed). */
  close(error: Error): void {
    this.open = false;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
    this.free.length = 0;
    this.total = 0;
  }
}
