/**
 * One llama.cpp backend per process, shared by every embedded model and reference-counted: the
 * last model to close disposes it.
 */
import type { Llama } from 'node-llama-cpp';
import { loadNodeLlamaCpp } from './load-node-llama-cpp';

interface SharedLlama {
  promise: Promise<Llama>;
  refs: number;
}
let sharedLlama: SharedLlama | null = null;

export function acquireLlama(): { llama: Promise<Llama>; release: () => Promise<void> } {
  if (!sharedLlama) {
    const entry: SharedLlama = {
      refs: 0,
      // maxThreads 0: no process-wide cap, so each context uses exactly its own `threads`.
      promise: loadNodeLlamaCpp().then((nlc) => nlc.getLlama({ gpu: false, build: 'never', maxThreads: 0 })),
    };
    entry.promise.catch(() => {
      if (sharedLlama === entry) sharedLlama = null;
    });
    sharedLlama = entry;
  }
  const entry = sharedLlama;
  entry.refs++;
  let released = false;
  return {
    llama: entry.promise,
    release: async () => {
      if (released) return;
      released = true;
      if (--entry.refs > 0) return;
      if (sharedLlama === entry) sharedLlama = null;
      const llama = await entry.promise.catch(() => null);
      await llama?.dispose();
    },
  };
}
