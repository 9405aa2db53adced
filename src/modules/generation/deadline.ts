/**
 * One signal for a backend call that fires when the client disconnects or when the model's
 * timeout_ms passes, whichever comes first; its reason tells which (see generation.errors.ts).
 */
import { DeadlineExceeded } from '../../contracts/generation';

export interface Deadline {
  signal: AbortSignal;
  dispose(): void;
}

export function deadline(clientSignal: AbortSignal, timeoutMs: number): Deadline {
  const controller = new AbortController();
  const onClientAbort = () => controller.abort(clientSignal.reason);
  if (clientSignal.aborted) onClientAbort();
  else clientSignal.addEventListener('abort', onClientAbort, { once: true });
  const timer = setTimeout(() => controller.abort(new DeadlineExceeded()), timeoutMs);
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      clientSignal.removeEventListener('abort', onClientAbort);
    },
  };
}
