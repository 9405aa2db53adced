/**
 * One backend generation shared by identical requests that arrive while it runs (request
 * coalescing). Every request is a subscriber; streaming subscribers get the deltas so far and
 * then live ones. The backend call is aborted only when every subscriber has gone, so one
 * impatient client cannot cancel the answer others are waiting for.
 *
 * Each subscriber learns how its part ended (FlightOutcome), with the facts billing needs (see
 * usage/billing.ts): one subscriber, the payer, carries the generation's cost. The payer is the
 * first subscriber still attached, in the order they joined: the request that started the
 * generation while it stays, else the next one. A subscriber whose leaving ends the generation
 * (the last one) is the payer of what was produced until then.
 */
import type { DeltaListener, FlightResult, FlightRunner } from '../../contracts/flight';
import { ClientDisconnected } from '../../contracts/generation';

/** What the generation had done when a subscriber's part ended. */
export interface FlightProgress {
  /** Non-empty deltas the backend produced. */
  produced: number;
  /** Whether the backend had accepted the request. */
  accepted: boolean;
  /** The model whose output it was (a fallback's name, say), once output came. */
  servedBy?: string;
}

export type FlightOutcome =
  | { kind: 'answer'; answer: FlightResult; payer: boolean }
  | { kind: 'failed'; error: unknown; payer: boolean; progress: FlightProgress; received: number }
  | { kind: 'left'; reason: unknown; payer: boolean; progress: FlightProgress; received: number };

interface Subscriber {
  onDelta?: DeltaListener;
  onAdmitted?: () => void;
  /** Deltas delivered to this subscriber. */
  received: number;
  settle: (outcome: FlightOutcome) => void;
}

export class Flight {
  private readonly controller = new AbortController();
  private readonly deltas: { text: string; model: string; kind?: 'reasoning' }[] = [];
  /** Attached subscribers, in the order they joined. */
  private readonly subscribers: Subscriber[] = [];
  private accepted = false;
  private admitted = false;
  private produced = 0;
  private servedBy: string | undefined;
  readonly done: Promise<FlightResult>;

  /** Every subscriber left and the backend call was aborted: new requests must not join it. */
  get abandoned(): boolean {
    return this.controller.signal.aborted;
  }

  constructor(runner: FlightRunner) {
    this.done = runner(this.controller.signal, {
      emit: (text, model, kind) => {
        this.deltas.push({ text, model, ...(kind ? { kind } : {}) });
        this.servedBy = model;
        if (text !== '') this.produced += 1;
        for (const subscriber of this.subscribers) this.deliver(subscriber, text, model, kind);
      },
      admitted: () => {
        if (this.admitted) return;
        this.admitted = true;
        for (const subscriber of this.subscribers) subscriber.onAdmitted?.();
      },
      accepted: () => {
        this.accepted = true;
      },
    });
    this.done.then(
      (answer) =>
        this.finish((_subscriber, index) => ({
          kind: 'answer',
          answer,
          payer: index === 0 && !answer.fromPeer && !answer.fromCache,
        })),
      (error: unknown) =>
        this.finish((subscriber, index) => ({
          kind: 'failed',
          error,
          payer: index === 0,
          progress: this.progress(),
          received: subscriber.received,
        })),
    );
  }

  /**
   * Follows the generation on behalf of one client. `onAdmitted` is told once the generation got
   * its turn (at once when it has already); `onDelta` (streams) first receives the deltas
   * produced so far. When `clientSignal` aborts, this subscriber leaves; the last one to leave
   * aborts the backend call. Never rejects: failures are outcomes.
   */
  subscribe(clientSignal: AbortSignal, onDelta?: DeltaListener, onAdmitted?: () => void): Promise<FlightOutcome> {
    return new Promise<FlightOutcome>((resolve) => {
      const subscriber: Subscriber = { onDelta, onAdmitted, received: 0, settle: resolve };
      if (clientSignal.aborted) {
        // Gone before joining: a generation nobody else follows must not run on unattended.
        if (this.subscribers.length === 0) this.controller.abort(new ClientDisconnected());
        resolve({ kind: 'left', reason: clientSignal.reason, payer: false, progress: this.progress(), received: 0 });
        return;
      }
      if (this.admitted) onAdmitted?.();
      for (const delta of this.deltas) this.deliver(subscriber, delta.text, delta.model, delta.kind);
      this.subscribers.push(subscriber);
      const onAbort = () => {
        const index = this.subscribers.indexOf(subscriber);
        if (index < 0) return; // already settled
        this.subscribers.splice(index, 1);
        const last = this.subscribers.length === 0;
        if (last) this.controller.abort(new ClientDisconnected());
        resolve({
          kind: 'left',
          reason: clientSignal.reason,
          payer: last,
          progress: this.progress(),
          received: subscriber.received,
        });
      };
      clientSignal.addEventListener('abort', onAbort, { once: true });
      subscriber.settle = (outcome) => {
        clientSignal.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
    });
  }

  private deliver(subscriber: Subscriber, text: string, model: string, kind?: 'reasoning'): void {
    if (!subscriber.onDelta) return;
    if (text !== '') subscriber.received += 1;
    subscriber.onDelta(text, model, kind);
  }

  private progress(): FlightProgress {
    return { produced: this.produced, accepted: this.accepted, servedBy: this.servedBy };
  }

  private finish(outcomeOf: (subscriber: Subscriber, index: number) => FlightOutcome): void {
    const attached = this.subscribers.splice(0);
    attached.forEach((subscriber, index) => subscriber.settle(outcomeOf(subscriber, index)));
  }
}
