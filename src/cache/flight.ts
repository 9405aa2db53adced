/**
 * One backend generation shared by identical requests that arrive while it runs (request
 * coalescing). Every request is a subscriber; streaming subscribers get the deltas so far and
 * then live ones. The backend call is aborted only when every subscriber has gone, so one
 * impatient client cannot cancel the answer others are waiting for.
 */
import { ClientDisconnected } from '../generation/generation.errors';
import type { GenerationResult } from '../generation/providers/provider.types';

export interface FlightResult {
  /** The model that produced the result. */
  model: string;
  result: GenerationResult;
  /** Produced by another replica (found in the shared cache while waiting for it). */
  fromPeer?: boolean;
}

export type DeltaListener = (text: string, model: string) => void;

/** What the flight runs: the backend call, reporting deltas as they come (streams). */
export type FlightRunner = (signal: AbortSignal, emit: DeltaListener) => Promise<FlightResult>;

export class Flight {
  private readonly controller = new AbortController();
  private readonly deltas: { text: string; model: string }[] = [];
  private readonly listeners = new Set<DeltaListener>();
  private subscribers = 0;
  readonly done: Promise<FlightResult>;

  /** Every subscriber left and the backend call was aborted: new requests must not join it. */
  get abandoned(): boolean {
    return this.controller.signal.aborted;
  }

  constructor(runner: FlightRunner) {
    this.done = runner(this.controller.signal, (text, model) => {
      this.deltas.push({ text, model });
      for (const listener of this.listeners) listener(text, model);
    });
    this.done.catch(() => undefined); // subscribers observe the failure; never unhandled
  }

  /**
   * Waits for the result on behalf of one client. `onDelta` (streams) first receives the deltas
   * produced so far. When `clientSignal` aborts, this subscriber leaves (rejecting with the
   * signal's reason); the last one to leave aborts the backend call.
   */
  subscribe(clientSignal: AbortSignal, onDelta?: DeltaListener): Promise<FlightResult> {
    this.subscribers += 1;
    if (onDelta) {
      for (const delta of this.deltas) onDelta(delta.text, delta.model);
      this.listeners.add(onDelta);
    }
    return new Promise<FlightResult>((resolve, reject) => {
      const leave = () => {
        if (onDelta) this.listeners.delete(onDelta);
        this.subscribers -= 1;
        if (this.subscribers === 0) this.controller.abort(new ClientDisconnected());
      };
      const onAbort = () => {
        leave();
        reject(clientSignal.reason);
      };
      if (clientSignal.aborted) return onAbort();
      clientSignal.addEventListener('abort', onAbort, { once: true });
      this.done.then(
        (result) => {
          clientSignal.removeEventListener('abort', onAbort);
          if (onDelta) this.listeners.delete(onDelta);
          resolve(result);
        },
        (error: unknown) => {
          clientSignal.removeEventListener('abort', onAbort);
          if (onDelta) this.listeners.delete(onDelta);
          reject(error);
        },
      );
    });
  }
}
