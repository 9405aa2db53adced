/** Small shared pieces: the API error box, status badges, the loading line. */
import { ApiError } from '../api';
import type { KeyStatus } from '../format';

/** Shows what the server said: its error code, message and request id. */
export function ErrorMessage({ error }: { error: unknown }) {
  if (error === null || error === undefined) return null;
  if (error instanceof ApiError) {
    return (
      <div class="error" role="alert">
        <strong class="error-code">{error.code}</strong>
        <span class="error-message">{error.message}</span>
        {error.param ? <span class="error-param">field: {error.param}</span> : null}
        {error.requestId ? <span class="error-request">request id {error.requestId}</span> : null}
      </div>
    );
  }
  return (
    <div class="error" role="alert">
      <span class="error-message">{error instanceof Error ? error.message : String(error)}</span>
    </div>
  );
}

export function StatusBadge({ status }: { status: KeyStatus }) {
  return <span class={`badge badge-${status}`}>{status}</span>;
}

export function Loading() {
  return (
    <p class="muted" aria-live="polite">
      Loading…
    </p>
  );
}
