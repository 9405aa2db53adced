/** Runs one readiness probe with its own time bound and turns the outcome into a short, safe reason. */
import { BackendResponseError, BackendUnreachableError } from '../../contracts/backend-errors';

export type ProbeOutcome = { up: true; ms: number } | { up: false; ms: number; reason: string };

class ProbeTimeout extends Error {
  override readonly name = 'ProbeTimeout';
}

const URL_PATTERN = /\b[a-z][a-z0-9+.-]*:\/\/\S+/gi;

/** A reason fit for the public /readyz body and logs: never a URL (which may hold credentials). */
export function probeFailureReason(error: unknown, timeoutMs: number): string {
  if (error instanceof ProbeTimeout) return `timeout of ${timeoutMs}ms exceeded`;
  if (error instanceof BackendUnreachableError) return 'unreachable';
  if (error instanceof BackendResponseError) return `answered with an error: ${error.message}`;
  const message = error instanceof Error ? error.message : String(error);
  return (message || 'failed').replace(URL_PATTERN, '<url>').slice(0, 200);
}

/**
 * Runs `probe` with a signal that aborts after `timeoutMs`; the outcome arrives at the bound at
 * the latest, even when the probe ignores its signal (it is then left to finish on its own).
 */
export async function boundedProbe(
  timeoutMs: number,
  probe: (signal: AbortSignal) => Promise<unknown>,
): Promise<ProbeOutcome> {
  const started = performance.now();
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const reason = new ProbeTimeout();
      reject(reason);
      controller.abort(reason);
    }, timeoutMs);
  });
  const elapsed = (): number => Math.round(performance.now() - started);
  try {
    await Promise.race([Promise.resolve().then(() => probe(controller.signal)), timeout]);
    return { up: true, ms: elapsed() };
  } catch (error) {
    return {
      up: false,
      ms: elapsed(),
      reason: probeFailureReason(controller.signal.aborted ? controller.signal.reason : error, timeoutMs),
    };
  } finally {
    clearTimeout(timer);
    if (!controller.signal.aborted) controller.abort();
  }
}
