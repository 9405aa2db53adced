/**
 * The time a request spends in the gateway itself, excluding the time it waits on the backend
 * (the upstream call, or the shared generation it joined): what the gateway adds to every call.
 * Every response carries it as `X-Gateway-Overhead-Ms` (for a stream: up to its first byte), and
 * `llm_gateway_overhead_seconds` observes it when the response ends.
 */
import type { RequestContext } from './request-context';

export function backendWaitStarted(ctx: RequestContext): void {
  ctx.backendWait ??= { waitedNs: 0n, since: null };
  ctx.backendWait.since ??= process.hrtime.bigint();
}

export function backendWaitEnded(ctx: RequestContext): void {
  const wait = ctx.backendWait;
  if (!wait || wait.since === null) return;
  wait.waitedNs += process.hrtime.bigint() - wait.since;
  wait.since = null;
}

/** Milliseconds in the gateway so far: since arrival, minus the backend waits (the current one too). */
export function gatewayOverheadMs(ctx: RequestContext, now = process.hrtime.bigint()): number {
  const wait = ctx.backendWait;
  const waited = wait ? wait.waitedNs + (wait.since === null ? 0n : now - wait.since) : 0n;
  return Number(now - ctx.startedAt - waited) / 1e6;
}
