/**
 * The statements that write usage exactly once (API.md "Quotas"). Each carries an id and records
 * it in `usage_writes` in the same statement (data-modifying CTEs: one statement is one
 * transaction and one round trip), and applies its changes only when the id was not recorded
 * before. So a write retried after an ambiguous failure — a timeout whose statement may have
 * committed, a connection lost with the reply — is a no-op when the first attempt committed.
 *
 * - A batch: the ledger upserts (key_usage_daily, team_usage_daily), and for each key and team
 *   with counters one update that adds its tokens and spend and frees its settled budget
 *   reservations (their rows are deleted; the amounts of the rows deleted are taken off
 *   `budget_reserved`).
 * - A release (RELEASE_SQL): gives a key's or a team's reservation back once (`release:<rid>`,
 *   limits/limit-owner.ts), and only if the reservation happened (`reserve:<rid>`, recorded by
 *   the reservation itself, limits/quota.service.ts): its quota unit, and its budget reservation
 *   if the row is still there. A reservation whose reply was lost is given back if it committed,
 *   and nothing happens if it did not: run it only after such a reservation can no longer be
 *   running (statement_timeout).
 * A budget reservation's row is the once-only gate for its amount, shared by the batch, the
 * release and the sweep of reservations whose process died (BUDGET_SWEEP_SQL). Releases, spend
 * and charges apply to the period they were made in, never to a later one.
 */
import { costDecimal } from '../../contracts/cost';
import type { OwnerTable } from '../limits/limit-owner';
import type { LedgerRow, TokenCharge, UsageBatch } from './usage-journal';

/**
 * A batch's rows summed per (owner, day, model), the primary key of a ledger table: a key that
 * changed teams between its requests of one batch has a row per team, and one upsert may change
 * a ledger row only once.
 */
function ledgerRows(rows: LedgerRow[], ownerOf: (row: LedgerRow) => string | null | undefined): LedgerRow[] {
  const sums = new Map<string, LedgerRow>();
  for (const row of rows) {
    const owner = ownerOf(row);
    if (!owner) continue;
    const id = `${owner}\u0000${row.day}\u0000${row.model}`;
    const sum = sums.get(id);
    if (!sum) {
      sums.set(id, { ...row });
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
  const keys = ledgerRows(batch.rows, (row) => row.keyId);
  if (keys.length > 0) ledger('ledger', 'key_usage_daily', 'key_id', keys, (row) => row.keyId);
  const teams = ledgerRows(batch.rows, (row) => row.teamId);
  if (teams.length > 0) ledger('team_ledger', 'team_usage_daily', 'team_id', teams, (row) => row.teamId!);
  if (batch.settles?.length) {
    parts.push(`freed AS (
  DELETE FROM budget_reservations WHERE id = ANY(${param(batch.settles, 'text[]')}) AND EXISTS (SELECT 1 FROM marker)
  RETURNING owner_table, owner_id, amount)`);
  }
  const owners = (name: string, table: OwnerTable, list: TokenCharge[]) => {
    if (list.length === 0 && !batch.settles?.length) return;
    const values = list.map(
      (c) =>
        `(${param(c.keyId, 'uuid')}, ${param(c.resetAt, 'timestamptz')}, ${param(c.tokens, 'bigint')}, ` +
        `${param(costDecimal(BigInt(c.cost ?? '0')), 'numeric')})`,
    );
    const charged = `${name}_values`;
    parts.push(
      `${charged} (owner_id, reset_at, tokens, cost) AS (` +
        (values.length > 0
          ? `VALUES ${values.join(', ')}`
          : 'SELECT NULL::uuid, NULL::timestamptz, 0::bigint, 0::numeric WHERE false') +
        ')',
    );
    const inPeriod = `FROM ${charged} c WHERE c.owner_id = o.id AND c.reset_at = o.quota_reset_at`;
    const freed = batch.settles?.length
      ? `COALESCE((SELECT sum(f.amount) FROM freed f WHERE f.owner_table = '${table}' AND f.owner_id = o.id), 0)`
      : '0';
    const freedOwners = batch.settles?.length ? ` UNION SELECT owner_id FROM freed WHERE owner_table = '${table}'` : '';
    // One update per owner row (a row changed twice in one statement keeps only one change).
    parts.push(`${name} AS (
  UPDATE ${table} o SET
    quota_tokens_used = o.quota_tokens_used + COALESCE((SELECT sum(c.tokens) ${inPeriod}), 0),
    budget_spent = o.budget_spent + COALESCE((SELECT sum(c.cost) ${inPeriod}), 0),
    budget_reserved = o.budget_reserved - ${freed}
  WHERE o.id IN (SELECT owner_id FROM ${charged}${freedOwners}) AND EXISTS (SELECT 1 FROM marker)
  RETURNING 1)`);
  };
  owners(
    'charges',
    'api_keys',
    batch.charges.filter((charge) => !charge.team),
  );
  owners(
    'team_charges',
    'teams',
    batch.charges.filter((charge) => charge.team),
  );
  return { text: `WITH ${parts.join(',\n')}\nSELECT count(*)::int AS applied FROM marker`, values };
}

/**
 * $1 owner id, $2 the period's end, $3 the reservation id, $4 its release marker, $5 its reserve
 * marker.
 */
function releaseSql(table: OwnerTable): string {
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
    CASE WHEN quota_reset_at = $2::timestamptz AND quota_requests_used > 0 THEN 1 ELSE 0 END,
  budget_reserved = budget_reserved - COALESCE((SELECT sum(amount) FROM freed), 0)
WHERE id = $1 AND EXISTS (SELECT 1 FROM marker)`;
}

export const RELEASE_SQL: Record<OwnerTable, string> = { api_keys: releaseSql('api_keys'), teams: releaseSql('teams') };

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
