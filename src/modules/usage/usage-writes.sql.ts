/**
 * The statements that write usage exactly once (API.md "Quotas"). Each carries an id and records
 * it in `usage_writes` in the same statement (data-modifying CTEs: one statement is one
 * transaction and one round trip), and applies its changes only when the id was not recorded
 * before. So a write retried after an ambiguous failure — a timeout whose statement may have
 * committed, a connection lost with the reply — is a no-op when the first attempt committed.
 *
 * - A batch: the ledger upserts (key_usage_daily, team_usage_daily) and the token charges
 *   (api_keys, teams) of a batch.
 * - A settlement (SETTLE_SQL): concludes a key's or a team's reservation once (`release:<rid>`,
 *   limits/limit-owner.ts), and only if the reservation happened (`reserve:<rid>`, recorded by
 *   the reservation itself, limits/quota.service.ts): the quota unit is given back (a request
 *   that ended free) or kept (one that was served), the spend is added to the budget, and the
 *   budget reservation's row, if it is still there, is deleted and its amount taken off
 *   `budget_reserved` (the row is the once-only gate for that amount, shared with the sweep of
 *   reservations whose process died, BUDGET_SWEEP_SQL). A reservation whose reply was lost is
 *   settled if it committed, and nothing happens if it did not: run it only after such a
 *   reservation can no longer be running (statement_timeout).
 * Releases, spend and charges apply to the period they were made in, never to a later one.
 */
import { costDecimal } from '../../contracts/cost';
import type { OwnerTable } from '../limits/limit-owner';
import type { LedgerRow, TokenCharge, UsageBatch } from './usage-journal';

/** The team rows of a batch: its key rows summed per (team, day, model). */
function teamRows(rows: LedgerRow[]): (LedgerRow & { teamId: string })[] {
  const sums = new Map<string, LedgerRow & { teamId: string }>();
  for (const row of rows) {
    if (!row.teamId) continue;
    const id = `${row.teamId}\u0000${row.day}\u0000${row.model}`;
    const sum = sums.get(id);
    if (!sum) {
      sums.set(id, { ...row, teamId: row.teamId });
      continue;
    }
    sum.requests += row.requests;
    sum.cachedRequests += row.cachedRequests;
    sum.promptTokens += row.promptTokens;
    sum.completionTokens += row.completionTokens;
    sum.cost = (BigInt(sum.cost ?? '0') + BigInt(row.cost ?? '0')).toString();
  }
  return [...sums.values()];
}

export function batchStatement(batch: UsageBatch): { text: string; values: unknown[] } {
  const values: unknown[] = [batch.id];
  const param = (value: unknown, cast: string): string => {
    values.push(value);
    return `$${values.length}::${cast}`;
  };
  const parts = ['marker AS (INSERT INTO usage_writes (id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id)'];
  const ledger = (
    name: string,
    table: string,
    owner: string,
    rows: LedgerRow[],
    ownerOf: (row: LedgerRow) => string,
  ) => {
    const values = rows.map(
      (r) =>
        `(${param(ownerOf(r), 'uuid')}, ${param(r.day, 'date')}, ${param(r.model, 'text')}, ${param(r.requests, 'integer')}, ` +
        `${param(r.cachedRequests, 'integer')}, ${param(r.promptTokens, 'bigint')}, ${param(r.completionTokens, 'bigint')}, ` +
        `${param(costDecimal(BigInt(r.cost ?? '0')), 'numeric')})`,
    );
    parts.push(`${name} AS (
  INSERT INTO ${table} (${owner}, day, model, requests, cached_requests, prompt_tokens, completion_tokens, cost)
  SELECT v.* FROM (VALUES ${values.join(', ')}) AS v (${owner}, day, model, requests, cached_requests, prompt_tokens, completion_tokens, cost)
  WHERE EXISTS (SELECT 1 FROM marker)
  ON CONFLICT (${owner}, day, model) DO UPDATE SET
    requests = ${table}.requests + EXCLUDED.requests,
    cached_requests = ${table}.cached_requests + EXCLUDED.cached_requests,
    prompt_tokens = ${table}.prompt_tokens + EXCLUDED.prompt_tokens,
    completion_tokens = ${table}.completion_tokens + EXCLUDED.completion_tokens,
    cost = ${table}.cost + EXCLUDED.cost
  RETURNING 1)`);
  };
  if (batch.rows.length > 0) ledger('ledger', 'key_usage_daily', 'key_id', batch.rows, (row) => row.keyId);
  const teams = teamRows(batch.rows);
  if (teams.length > 0) ledger('team_ledger', 'team_usage_daily', 'team_id', teams, (row) => row.teamId!);
  const charges = (name: string, table: OwnerTable, list: TokenCharge[]) => {
    if (list.length === 0) return;
    const values = list.map(
      (c) => `(${param(c.keyId, 'uuid')}, ${param(c.resetAt, 'timestamptz')}, ${param(c.tokens, 'bigint')})`,
    );
    parts.push(`${name} AS (
  UPDATE ${table} k SET quota_tokens_used = k.quota_tokens_used + c.tokens
  FROM (VALUES ${values.join(', ')}) AS c (owner_id, reset_at, tokens)
  WHERE k.id = c.owner_id AND k.quota_reset_at = c.reset_at AND EXISTS (SELECT 1 FROM marker)
  RETURNING 1)`);
  };
  charges(
    'charges',
    'api_keys',
    batch.charges.filter((charge) => !charge.team),
  );
  charges(
    'team_charges',
    'teams',
    batch.charges.filter((charge) => charge.team),
  );
  return { text: `WITH ${parts.join(',\n')}\nSELECT count(*)::int AS applied FROM marker`, values };
}

/**
 * $1 owner id, $2 the period's end, $3 the reservation id, $4 its release marker, $5 its reserve
 * marker, $6 true to give the unit back, $7 the spend to add (a decimal). Returns the owner's
 * budget figures when it has a budget (BudgetGauges reads them).
 */
function settleSql(table: OwnerTable): string {
  return `
WITH marker AS (
  INSERT INTO usage_writes (id)
  SELECT $4 WHERE EXISTS (SELECT 1 FROM usage_writes WHERE id = $5)
  ON CONFLICT DO NOTHING RETURNING id),
freed AS (
  DELETE FROM budget_reservations
  WHERE id = $3 AND owner_table = '${table}' AND EXISTS (SELECT 1 FROM marker)
  RETURNING amount)
UPDATE ${table} SET
  quota_requests_used = quota_requests_used -
    CASE WHEN $6::boolean AND quota_reset_at = $2::timestamptz AND quota_requests_used > 0 THEN 1 ELSE 0 END,
  budget_spent = budget_spent + CASE WHEN quota_reset_at = $2::timestamptz THEN $7::numeric ELSE 0 END,
  budget_reserved = budget_reserved - COALESCE((SELECT sum(amount) FROM freed), 0)
WHERE id = $1 AND EXISTS (SELECT 1 FROM marker)`;
}

export const SETTLE_SQL: Record<OwnerTable, string> = { api_keys: settleSql('api_keys'), teams: settleSql('teams') };

/**
 * Gives back the budget reservations whose holder stopped renewing them (its process died, or
 * lost the database for longer than a lease): each row deleted once, its amount taken off its
 * owner's budget_reserved in the same statement.
 */
export const BUDGET_SWEEP_SQL = `
WITH gone AS (
  DELETE FROM budget_reservations WHERE expires_at < now() RETURNING owner_table, owner_id, amount),
keys AS (
  UPDATE api_keys k SET budget_reserved = k.budget_reserved - g.amount
  FROM (SELECT owner_id, sum(amount) AS amount FROM gone WHERE owner_table = 'api_keys' GROUP BY owner_id) g
  WHERE k.id = g.owner_id RETURNING 1),
teams AS (
  UPDATE teams t SET budget_reserved = t.budget_reserved - g.amount
  FROM (SELECT owner_id, sum(amount) AS amount FROM gone WHERE owner_table = 'teams' GROUP BY owner_id) g
  WHERE t.id = g.owner_id RETURNING 1)
SELECT count(*)::int AS released FROM gone`;

/** $1 the holder: its reservations live another lease. */
export const BUDGET_RENEW_SQL = (leaseSeconds: number) =>
  `UPDATE budget_reservations SET expires_at = now() + interval '${leaseSeconds} seconds' WHERE holder = $1`;

/**
 * Ids are kept long enough to make every retry a no-op: a reservation's and its release's for
 * an hour (they are resolved within seconds), a batch's for a week (a journal replayed after a
 * restart, even a late one).
 */
export const SWEEP_SQL = `
DELETE FROM usage_writes
WHERE written_at < now() - interval '7 days'
   OR (written_at < now() - interval '1 hour' AND (id LIKE 'reserve:%' OR id LIKE 'release:%'))`;
