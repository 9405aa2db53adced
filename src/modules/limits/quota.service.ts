/**
 * Monthly quotas (API.md "Quotas") of keys that have one; keys without a quota never touch
 * these counters (their usage is in the ledger). The counters live only in the api_keys row, and every
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
 * The token quota is checked before a generation (usage below the quota) and charged after it,
 * since a generation's size is unknown in advance: the requests in flight when the token quota
 * runs out can take usage past it by their own tokens. The request quota is never exceeded.
 */
import { Injectable } from '@nestjs/common';
import { AppError } from '../../contracts/app-error';
import { Clock } from '../../contracts/clock';
import type { QuotaFigures } from '../../contracts/limit-figures';
import { Database } from '../../infra/database/database.service';
import { toNumberOrNull } from '../../infra/database/row-values';
import { LimitRejections, type QuotaType } from './limit-rejections';
import { quotaPeriodAt } from './quota-period';

/**
 * The key's quota state right after a unit was reserved for this request (requestsUsed includes
 * it; tokensUsed is before it). resetAt, the end of the period the unit was taken from, is also
 * the period's identity.
 */
export interface QuotaReservation extends QuotaFigures {
  keyId: string;
  /** The reservation's id, chosen by the caller (its give-back refers to it). */
  rid: string;
}

interface QuotaRow {
  monthly_quota: number | null;
  monthly_token_quota: string | number | bigint | null;
  quota_requests_used: number;
  quota_tokens_used: string | number | bigint;
  quota_reset_at: Date | string;
}

const QUOTA_COLUMNS = 'monthly_quota, monthly_token_quota, quota_requests_used, quota_tokens_used, quota_reset_at';

/**
 * $1 key id, $2 now, $3/$4 start and end of the period `now` falls in, $5 the reservation's id,
 * $6 tokens this replica charged in the period that are not written yet (they count in the check,
 * so one replica's token quota is exact; they are written by the usage writer). When the stored
 * period is over (`quota_reset_at <= now`), usage counts from zero in the new period. The id is
 * recorded only when a unit was reserved, in the same statement.
 */
const RESERVE_SQL = `
WITH reserved AS (
  UPDATE api_keys SET
    quota_period_start = CASE WHEN quota_reset_at <= $2::timestamptz THEN $3::timestamptz ELSE quota_period_start END,
    quota_reset_at = CASE WHEN quota_reset_at <= $2::timestamptz THEN $4::timestamptz ELSE quota_reset_at END,
    quota_requests_used = CASE WHEN quota_reset_at <= $2::timestamptz THEN 1 ELSE quota_requests_used + 1 END,
    quota_tokens_used = CASE WHEN quota_reset_at <= $2::timestamptz THEN 0 ELSE quota_tokens_used END
  WHERE id = $1
    AND (monthly_quota IS NULL
         OR CASE WHEN quota_reset_at <= $2::timestamptz THEN 0 ELSE quota_requests_used END < monthly_quota)
    AND (monthly_token_quota IS NULL
         OR CASE WHEN quota_reset_at <= $2::timestamptz THEN 0 ELSE quota_tokens_used + $6::bigint END < monthly_token_quota)
  RETURNING ${QUOTA_COLUMNS}),
marker AS (INSERT INTO usage_writes (id) SELECT 'reserve:' || $5 FROM reserved)
SELECT * FROM reserved`;

const READ_SQL = `SELECT ${QUOTA_COLUMNS} FROM api_keys WHERE id = $1`;

@Injectable()
export class QuotaService {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly rejections: LimitRejections,
  ) {}

  /**
   * Reserves one request unit of the period `now` falls in under the id `rid`, or throws 402
   * quota_exhausted (with the key's quota figures and the reset time in its message).
   * `unwrittenTokens`: tokens charged to the key in this period and not written yet.
   */
  async reserve(
    keyId: string,
    rid: string,
    now: Date = this.clock.now(),
    unwrittenTokens = 0,
  ): Promise<QuotaReservation> {
    const period = quotaPeriodAt(now);
    const { rows } = await this.db.query<QuotaRow>(RESERVE_SQL, [
      keyId,
      now.toISOString(),
      period.start.toISOString(),
      period.resetAt.toISOString(),
      rid,
      unwrittenTokens,
    ]);
    if (rows.length > 0) return this.toReservation(keyId, rid, rows[0], unwrittenTokens);
    throw await this.exhausted(keyId, now, unwrittenTokens);
  }

  /** The 402 for a reservation that matched no row (read again only on this cold path). */
  private async exhausted(keyId: string, now: Date, unwrittenTokens: number): Promise<AppError> {
    const { rows } = await this.db.query<QuotaRow>(READ_SQL, [keyId]);
    if (rows.length === 0)
      return new AppError('invalid_api_key', 'the API key is unknown, revoked, inactive or expired');
    const state = this.toReservation(keyId, '', rows[0], unwrittenTokens);
    // A period that has ended counts as a fresh one (only a quota of 0 refuses there).
    if (state.resetAt <= now) {
      Object.assign(state, { resetAt: quotaPeriodAt(now).resetAt, requestsUsed: 0, tokensUsed: 0 });
    }
    const type: QuotaType =
      state.requestQuota !== null && state.requestsUsed >= state.requestQuota ? 'requests' : 'tokens';
    this.rejections.quotaExhausted(type);
    const limit = type === 'requests' ? `request quota of ${state.requestQuota}` : `token quota of ${state.tokenQuota}`;
    const resetAt = state.resetAt.toISOString();
    const { keyId: _, rid: __, ...figures } = state;
    return new AppError('quota_exhausted', `the monthly ${limit} is used up; it resets at ${resetAt}`, {
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
