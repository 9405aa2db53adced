/**
 * Monthly quotas and budgets (API.md "Quotas", "Teams, prices and budgets") of keys and teams
 * that have one; keys without either never touch these counters (their usage is in the ledger).
 * A team's counters are the same columns in its teams row, checked by the same statement, so what
 * follows holds for both. The counters live only in the owner's row, and every
 * change is one conditional SQL statement, so they hold exactly under concurrent requests on
 * any number of replicas (PostgreSQL re-checks the WHERE clause on the newest row version when
 * it waits for a row lock):
 * - reserve: one request unit, only while the period's usage is under both quotas; the same
 *   statement starts a new period when the stored one has ended (whichever replica gets there
 *   first does it; the others then see the new period), and records the reservation's id
 *   (`reserve:<rid>` in usage_writes), so a reservation whose reply was lost can be settled
 *   exactly: given back if it happened, nothing if not (usage/usage-writes.sql.ts);
 * - the unit given back (failed generations are free) and the real token usage charged after the
 *   generation are written by the usage module (usage/usage-writer.ts), exactly once, in the
 *   period the unit was reserved in, never in a later one.
 *
 * A budget is reserved in the same statement: the request's largest possible cost is added to
 * `budget_reserved` while settled spend plus everything reserved stays within `monthly_budget`,
 * and the reservation is also a row of budget_reservations (held by this process and renewed
 * while the request runs, usage/budget-upkeep.ts), settled to the real cost when the request ends
 * in the batch that writes its usage (usage/usage-writes.sql.ts) or given back (RELEASE_SQL, or the
 * sweep of a process that died).
 *
 * The token quota is checked before a generation (usage below the quota) and charged after it,
 * since a generation's size is unknown in advance: the requests in flight when the token quota
 * runs out can take usage past it by their own tokens. The request quota is never exceeded.
 */
import { Injectable } from '@nestjs/common';
import { AppError } from '../../contracts/app-error';
import type { LimitOwnerKind } from '../../contracts/authenticated-key';
import { Clock } from '../../contracts/clock';
import { costDecimal } from '../../contracts/cost';
import type { QuotaFigures } from '../../contracts/limit-figures';
import { Database } from '../../infra/database/database.service';
import { toDecimalOrNull, toNumberOrNull } from '../../infra/database/row-values';
import { LimitRejections, type QuotaType } from './limit-rejections';
import { reserveMarker } from './limit-owner';
import { quotaPeriodAt } from './quota-period';

/**
 * The owner's quota state right after a unit was reserved for this request (requestsUsed includes
 * it; tokensUsed is before it). resetAt, the end of the period the unit was taken from, is also
 * the period's identity.
 */
export interface QuotaReservation extends QuotaFigures {
  /** The key's or the team's id. */
  keyId: string;
  /** The reservation's id, chosen by the caller (its give-back refers to it). */
  rid: string;
  /** The budget reserved, in femto-units (0: none, or the owner has no budget). */
  budgetReserved?: bigint;
}

/** What a reservation takes besides the request unit. */
export interface ReserveOptions {
  owner?: LimitOwnerKind;
  /** The request's largest possible cost in femto-units (reserved when the owner has a budget). */
  budget?: bigint;
  /** The process that holds the budget reservation (renews it while the request runs). */
  holder?: string;
}

interface QuotaRow {
  monthly_quota: number | null;
  monthly_token_quota: string | number | bigint | null;
  quota_requests_used: number;
  quota_tokens_used: string | number | bigint;
  quota_reset_at: Date | string;
  monthly_budget: string | number | null;
  budget_spent: string | number;
  budget_reserved: string | number;
}

const QUOTA_COLUMNS =
  'monthly_quota, monthly_token_quota, quota_requests_used, quota_tokens_used, quota_reset_at, ' +
  'monthly_budget, budget_spent, budget_reserved';

/** How long a budget reservation lives without being renewed by its holder (BudgetLeases renews it well before). */
export const BUDGET_LEASE_SECONDS = 20;

/**
 * $1 owner id, $2 now, $3/$4 start and end of the period `now` falls in, $5 the reservation's id,
 * $6 tokens this replica charged in the period that are not written yet (they count in the check,
 * so one replica's token quota is exact; they are written by the usage writer), $7 the budget to
 * reserve (a decimal), $8 the reservation's marker, $9 its holder. When the stored period is over
 * (`quota_reset_at <= now`), usage and spend count from zero in the new period. The marker, and
 * the budget reservation's row, are recorded only when a unit was reserved, in the same statement.
 */
function reserveSql(table: string): string {
  const ended = 'quota_reset_at <= $2::timestamptz';
  return `
WITH reserved AS (
  UPDATE ${table} SET
    quota_period_start = CASE WHEN ${ended} THEN $3::timestamptz ELSE quota_period_start END,
    quota_reset_at = CASE WHEN ${ended} THEN $4::timestamptz ELSE quota_reset_at END,
    quota_requests_used = CASE WHEN ${ended} THEN 1 ELSE quota_requests_used + 1 END,
    quota_tokens_used = CASE WHEN ${ended} THEN 0 ELSE quota_tokens_used END,
    budget_spent = CASE WHEN ${ended} THEN 0 ELSE budget_spent END,
    budget_reserved = budget_reserved + CASE WHEN monthly_budget IS NULL THEN 0 ELSE $7::numeric END
  WHERE id = $1
    AND (monthly_quota IS NULL
         OR CASE WHEN ${ended} THEN 0 ELSE quota_requests_used END < monthly_quota)
    AND (monthly_token_quota IS NULL
         OR CASE WHEN ${ended} THEN 0 ELSE quota_tokens_used + $6::bigint END < monthly_token_quota)
    AND (monthly_budget IS NULL
         OR CASE WHEN ${ended} THEN 0 ELSE budget_spent END + budget_reserved + $7::numeric <= monthly_budget)
  RETURNING ${QUOTA_COLUMNS}),
marker AS (INSERT INTO usage_writes (id) SELECT $8 FROM reserved),
held AS (
  INSERT INTO budget_reservations (id, owner_table, owner_id, amount, holder, expires_at)
  SELECT $5, '${table}', $1, $7::numeric, $9, now() + interval '${BUDGET_LEASE_SECONDS} seconds'
  FROM reserved WHERE monthly_budget IS NOT NULL AND $7::numeric > 0)
SELECT * FROM reserved`;
}

const RESERVE_SQL = { key: reserveSql('api_keys'), team: reserveSql('teams') };
const READ_SQL = {
  key: `SELECT ${QUOTA_COLUMNS} FROM api_keys WHERE id = $1`,
  team: `SELECT ${QUOTA_COLUMNS} FROM teams WHERE id = $1`,
};

@Injectable()
export class QuotaService {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly rejections: LimitRejections,
  ) {}

  /**
   * Reserves one request unit of the period `now` falls in under the id `rid` (and the budget of
   * `options`), or throws 402 quota_exhausted / budget_exhausted (with the owner's quota figures,
   * `param` naming the owner, the reset time in its message). `unwrittenTokens`: tokens charged to
   * the owner in this period and not written yet.
   */
  async reserve(
    ownerId: string,
    rid: string,
    now: Date = this.clock.now(),
    unwrittenTokens = 0,
    options: ReserveOptions = {},
  ): Promise<QuotaReservation> {
    const owner = options.owner ?? 'key';
    const budget = options.budget ?? 0n;
    const period = quotaPeriodAt(now);
    const { rows } = await this.db.query<QuotaRow>(RESERVE_SQL[owner], [
      ownerId,
      now.toISOString(),
      period.start.toISOString(),
      period.resetAt.toISOString(),
      rid,
      unwrittenTokens,
      costDecimal(budget),
      reserveMarker(owner, rid),
      options.holder ?? '',
    ]);
    if (rows.length > 0) {
      const reservation = this.toReservation(ownerId, rid, rows[0], unwrittenTokens);
      reservation.budgetReserved = rows[0].monthly_budget === null ? 0n : budget;
      return reservation;
    }
    throw await this.exhausted(owner, ownerId, now, unwrittenTokens);
  }

  /** The 402 for a reservation that matched no row (read again only on this cold path). */
  private async exhausted(
    owner: LimitOwnerKind,
    ownerId: string,
    now: Date,
    unwrittenTokens: number,
  ): Promise<AppError> {
    const { rows } = await this.db.query<QuotaRow>(READ_SQL[owner], [ownerId]);
    if (rows.length === 0)
      return new AppError('invalid_api_key', 'the API key is unknown, revoked, inactive or expired');
    const state = this.toReservation(ownerId, '', rows[0], unwrittenTokens);
    // A period that has ended counts as a fresh one (only a quota of 0 refuses there).
    const ended = state.resetAt <= now;
    if (ended) {
      Object.assign(state, { resetAt: quotaPeriodAt(now).resetAt, requestsUsed: 0, tokensUsed: 0 });
    }
    const { keyId: _, rid: __, budgetReserved: ___, ...figures } = state;
    const resetAt = state.resetAt.toISOString();
    const who = owner === 'key' ? 'the key' : "the key's team";
    let type: QuotaType | null = null;
    if (state.requestQuota !== null && state.requestsUsed >= state.requestQuota) type = 'requests';
    else if (state.tokenQuota !== null && state.tokensUsed >= state.tokenQuota) type = 'tokens';
    if (type === null) {
      const budget = toDecimalOrNull(rows[0].monthly_budget);
      const spent = ended ? '0' : String(rows[0].budget_spent);
      this.rejections.budgetExhausted(owner);
      return new AppError(
        'budget_exhausted',
        `the monthly budget of ${budget} of ${who} cannot cover this request (spent ${spent}, ` +
          `${String(rows[0].budget_reserved)} reserved by requests in flight); it resets at ${resetAt}`,
        { param: owner, figures: { quota: figures } },
      );
    }
    this.rejections.quotaExhausted(type);
    const limit = type === 'requests' ? `request quota of ${state.requestQuota}` : `token quota of ${state.tokenQuota}`;
    return new AppError('quota_exhausted', `the monthly ${limit} of ${who} is used up; it resets at ${resetAt}`, {
      param: owner,
      figures: { quota: figures },
    });
  }

  private toReservation(keyId: string, rid: string, row: QuotaRow, unwrittenTokens: number): QuotaReservation {
    return {
      keyId,
      rid,
      resetAt: new Date(row.quota_reset_at),
      requestQuota: row.monthly_quota,
      tokenQuota: toNumberOrNull(row.monthly_token_quota),
      requestsUsed: Number(row.quota_requests_used),
      tokensUsed: Number(row.quota_tokens_used) + unwrittenTokens,
    };
  }
}
