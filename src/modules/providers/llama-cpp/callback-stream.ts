/**
 * A generation that reports its text through a callback, as an async iterable of stream chunks:
 * deltas as they come, then one `done` chunk (or the generation's error). A consumer that stops
 * iterating early aborts the generation too.
 */
import type { GenerationResult, StreamChunk } from '../../../contracts/generation';

export type CallbackGeneration = (signal: AbortSignal, onDelta: (text: string) => void) => Promise<GenerationResult>;

export async function* callbackStream(generate: CallbackGeneration, signal: AbortSignal): AsyncIterable<StreamChunk> {
  // Our own controller too, so that a consumer that stops iterating early also stops the engine.
  const local = new AbortController();
  const forward = (): void => local.abort(signal.reason);
  if (signal.aborted) forward();
  else signal.addEventListener('abort', forward, { once: true });

  const pending: string[] = [];
  let wake: (() => void) | null = null;
  type Outcome = { ok: true; result: GenerationResult } | { ok: false; error: unknown };
  let outcome = null as Outcome | null;
  const notify = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  generate(local.signal, (text) => {
    pending.push(text);
    notify();
  }).then(
    (result) => {
      outcome = { ok: true, result };
      notify();
    },
    (error: unknown) => {
      outcome = { ok: false, error };
      notify();
    },
  );

  try {
    for (;;) {
      while (pending.length > 0) yield { type: 'delta', text: pending.shift()! };
      const o = outcome;
      if (o) {
        while (pending.length > 0) yield { type: 'delta', text: pending.shift()! };
        if (!o.ok) throw o.error;
        const { finishReason, usage, toolCalls } = o.result;
        yield { type: 'done', finishReason, usage, ...(toolCalls ? { toolCalls } : {}) };
        return;
      }
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    signal.removeEventListener('abort', forward);
    if (!outcome) local.abort(new Error('stream consumer stopped'));
  }
}
