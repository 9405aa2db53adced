/**
 * The statements that write usage exactly once (API.md "Quotas"). Each carries an id and records
 * it in `usage_writes` in the same statement (data-modifying CTEs: one statement is one
 * transaction and one round trip), and applies its changes only when the id was not recorded
 * before. So a write retried after an ambiguous failure — a timeout whose statement may have
 * committed, a connection lost with the reply — is a no-op when the first attempt committed.
 *
 * - A batch: the ledger upserts (key_usage_daily) and the token charges (api_keys) of a batch.
 * - A release: gives a reserved quota unit back, once (`release:<rid>`), and only if the
 *   reservation happened (`reserve:<rid>`, recorded by the reservation itself, limits/quota.service.ts):
 *   a reservation whose reply was lost is given back if it committed, and nothing happens if it
 *   did not. Run it only after such a reservation can no longer be running (statement_timeout).
 * Releases and charges apply to the period they were made in, never to a later one.
 */
import type { UsageBatch } from './usage-journal';

export function batchStatement(batch: UsageBatch): { text: string; values: unknown[] } {
  const values: unknown[] = [batch.id];
  const param = (value: unknown, cast: string): string => {
    values.push(value);
    return `$${values.length}::${cast}`;
  };
  const parts = ['marker AS (INSERT INTO usage_writes (id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id)'];
  if (batch.rows.length > 0) {
    const rows = batch.rows.map(
      (r) =>
        `(${param(r.keyId, 'uuid')}, ${param(r.day, 'date')}, ${param(r.model, 'text')}, ${param(r.requests, 'integer')}, ` +
        `${param(r.cachedRequests, 'integer')}, ${param(r.promptTokens, 'bigint')}, ${param(r.completionTokens, 'bigint')})`,
    );
    parts.push(`ledger AS (
  INSERT INTO key_usage_daily (key_id, day, model, requests, cached_requests, prompt_tokens, completion_tokens)
  SELECT v.* FROM (VALUES ${rows.join(', ')}) AS v (key_id, day, model, requests, cached_requests, prompt_tokens, completion_tokens)
  WHERE EXISTS (SELECT 1 FROM marker)
  ON CONFLICT (key_id, day, model) DO UPDATE SET
    requests = key_usage_daily.requests + EXCLUDED.requests,
    cached_requests = key_usage_daily.cached_requests + EXCLUDED.cached_requests,
    prompt_tokens = key_usage_daily.prompt_tokens + EXCLUDED.prompt_tokens,
    completion_tokens = key_usage_daily.completion_tokens + EXCLUDED.completion_tokens
  RETURNING 1)`);
  }
  if (batch.charges.length > 0) {
    const charges = batch.charges.map(
      (c) => `(${param(c.keyId, 'uuid')}, ${param(c.resetAt, 'timestamptz')}, ${param(c.tokens, 'bigint')})`,
    );
    parts.push(`charges AS (
  UPDATE api_keys k SET quota_tokens_used = k.quota_tokens_used + c.tokens
  FROM (VALUES ${charges.join(', ')}) AS c (key_id, reset_at, tokens)
  WHERE k.id = c.key_id AND k.quota_reset_at = c.reset_at AND EXISTS (SELECT 1 FROM marker)
  RETURNING 1)`);
  }
  return { text: `WITH ${parts.join(',\n')}\nSELECT count(*)::int AS applied FROM marker`, values };
}

/** $1 key id, $2 the period's end, $3 the reservation id. */
export const RELEASE_SQL = `
WITH marker AS (
  INSERT INTO usage_writes (id)
  SELECT 'release:' || $3 WHERE EXISTS (SELECT 1 FROM usage_writes WHERE id = 'reserve:' || $3)
  ON CONFLICT DO NOTHING RETURNING id)
UPDATE api_keys SET quota_requests_used = quota_requests_used - 1
WHERE id = $1 AND quota_reset_at = $2::timestamptz AND quota_requests_used > 0 AND EXISTS (SELECT 1 FROM marker)`;

/**
 * Ids are kept long enough to make every retry a no-op: a reservation's and its release's for
 * an hour (they are resolved within seconds), a batch's for a week (a journal replayed after a
 * restart, even a late one).
 */
export const SWEEP_SQL = `
DELETE FROM usage_writes
WHERE written_at < now() - interval '7 days'
   OR (written_at < now() - interval '1 hour' AND (id LIKE 'reserve:%' OR id LIKE 'release:%'))`;
