/**
 * Monthly quotas (API.md "Quotas"). The counters live only in the api_keys row, and every
 * change is one conditional SQL statement, so they hold exactly under concurrent requests on
 * any number of replicas (PostgreSQL re-checks the WHERE clause on the newest row version when
 * it waits for a row lock):
 * - reserve: one request unit, only while the period's usage is under both quotas; the same
 *   statement starts a new period when the stored one has ended (whichever replica gets there
 *   first does it; the others then see the new period);
 * - release: gives the unit back (failed generations are free);
 * - chargeTokens: adds the real token usage after the generation.
 * Release and token charges apply to the period the unit was reserved in, never to a later one.
 *
 * The token quota is checked before a generation (usage below the quota) and charged after it,
 * since a generation's size is unknown in advance: the requests in flight when the token quota
 * runs out can take usage past it by their own tokens. The request quota is never exceeded.
 */
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { AppError } from '../common/app-error';
import { Clock } from '../common/clock';
import { LimitEvents, type QuotaType } from '../rate-limit/limit-events';
import { quotaPeriodAt } from './quota-period';

/** The key's quota state right after a unit was reserved for this request. */
export interface QuotaReservation {
  keyId: string;
  /** End of the period the unit was taken from (also the period's identity). */
  resetAt: Date;
  requestQuota: number | null;
  tokenQuota: number | null;
  /** Period usage including this request's unit. */
  requestsUsed: number;
  /** Period tokens before this request. */
  tokensUsed: number;
}

interface QuotaRow {
  monthly_quota: number | null;
  monthly_token_quota: string | number | null;
  quota_requests_used: number;
  quota_tokens_used: string | number;
  quota_reset_at: Date | string;
}

const QUOTA_COLUMNS = 'monthly_quota, monthly_token_quota, quota_requests_used, quota_tokens_used, quota_reset_at';

/**
 * $1 key id, $2 now, $3/$4 start and end of the period `now` falls in. When the stored period
 * is over (`quota_reset_at <= now`), usage counts from zero in the new period.
 */
const RESERVE_SQL = `
UPDATE api_keys SET
  quota_period_start = CASE WHEN quota_reset_at <= $2::timestamptz THEN $3::timestamptz ELSE quota_period_start END,
  quota_reset_at = CASE WHEN quota_reset_at <= $2::timestamptz THEN $4::timestamptz ELSE quota_reset_at END,
  quota_requests_used = CASE WHEN quota_reset_at <= $2::timestamptz THEN 1 ELSE quota_requests_used + 1 END,
  quota_tokens_used = CASE WHEN quota_reset_at <= $2::timestamptz THEN 0 ELSE quota_tokens_used END
WHERE id = $1
  AND (monthly_quota IS NULL
       OR CASE WHEN quota_reset_at <= $2::timestamptz THEN 0 ELSE quota_requests_used END < monthly_quota)
  AND (monthly_token_quota IS NULL
       OR CASE WHEN quota_reset_at <= $2::timestamptz THEN 0 ELSE quota_tokens_used END < monthly_token_quota)
RETURNING ${QUOTA_COLUMNS}`;

const RELEASE_SQL = `
UPDATE api_keys SET quota_requests_used = quota_requests_used - 1
WHERE id = $1 AND quota_reset_at = $2::timestamptz AND quota_requests_used > 0`;

const CHARGE_TOKENS_SQL = `
UPDATE api_keys SET quota_tokens_used = quota_tokens_used + $3
WHERE id = $1 AND quota_reset_at = $2::timestamptz`;

const READ_SQL = `SELECT ${QUOTA_COLUMNS} FROM api_keys WHERE id = $1`;

const toNumberOrNull = (value: string | number | null): number | null => (value === null ? null : Number(value));

@Injectable()
export class QuotaService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly events: LimitEvents,
  ) {}

  /**
   * Reserves one request unit of the current period, or throws 402 quota_exhausted (with the
   * X-Quota-* headers and the reset time in its message).
   */
  async reserve(keyId: string): Promise<QuotaReservation> {
    const now = this.clock.now();
    const period = quotaPeriodAt(now);
    const [rows] = (await this.db.query(RESERVE_SQL, [
      keyId,
      now.toISOString(),
      period.start.toISOString(),
      period.resetAt.toISOString(),
    ])) as [QuotaRow[], number];
    if (rows.length > 0) return this.toReservation(keyId, rows[0]);
    throw await this.exhausted(keyId, now);
  }

  /** Gives the reserved unit back, if its period is still the current one. */
  async release(reservation: QuotaReservation): Promise<void> {
    await this.db.query(RELEASE_SQL, [reservation.keyId, reservation.resetAt.toISOString()]);
  }

  async chargeTokens(reservation: QuotaReservation, tokens: number): Promise<void> {
    if (tokens <= 0) return;
    await this.db.query(CHARGE_TOKENS_SQL, [reservation.keyId, reservation.resetAt.toISOString(), tokens]);
  }

  /** The 402 for a reservation that matched no row (read again only on this cold path). */
  private async exhausted(keyId: string, now: Date): Promise<AppError> {
    const rows = (await this.db.query(READ_SQL, [keyId])) as QuotaRow[];
    if (rows.length === 0)
      return new AppError('invalid_api_key', 'the API key is unknown, revoked, inactive or expired');
    const state = this.toReservation(keyId, rows[0]);
    // A period that has ended counts as a fresh one (only a quota of 0 refuses there).
    if (state.resetAt <= now) {
      Object.assign(state, { resetAt: quotaPeriodAt(now).resetAt, requestsUsed: 0, tokensUsed: 0 });
    }
    const type: QuotaType =
      state.requestQuota !== null && state.requestsUsed >= state.requestQuota ? 'requests' : 'tokens';
    this.events.quotaRejected(type);
    const limit = type === 'requests' ? `request quota of ${state.requestQuota}` : `token quota of ${state.tokenQuota}`;
    const resetAt = state.resetAt.toISOString();
    return new AppError('quota_exhausted', `the monthly ${limit} is used up; it resets at ${resetAt}`, {
      headers: quotaHeaders(state),
    });
  }

  private toReservation(keyId: string, row: QuotaRow): QuotaReservation {
    return {
      keyId,
      resetAt: new Date(row.quota_reset_at),
      requestQuota: row.monthly_quota,
      tokenQuota: toNumberOrNull(row.monthly_token_quota),
      requestsUsed: Number(row.quota_requests_used),
      tokensUsed: Number(row.quota_tokens_used),
    };
  }
}

/**
 * X-Quota-* headers when the key has a quota: X-Quota-Limit / -Remaining describe the request
 * quota when one is set, else the token quota; X-Quota-Tokens-Limit / -Remaining the token
 * quota whenever one is set; X-Quota-Reset is the end of the period (ISO 8601). Remaining
 * counts are as of the reservation: this request's unit included, its tokens not yet.
 */
export function quotaHeaders(state: QuotaReservation): Record<string, string> {
  const headers: Record<string, string> = {};
  const tokensRemaining = state.tokenQuota === null ? null : Math.max(0, state.tokenQuota - state.tokensUsed);
  if (state.requestQuota !== null) {
    headers['X-Quota-Limit'] = String(state.requestQuota);
    headers['X-Quota-Remaining'] = String(Math.max(0, state.requestQuota - state.requestsUsed));
  } else if (state.tokenQuota !== null) {
    headers['X-Quota-Limit'] = String(state.tokenQuota);
    headers['X-Quota-Remaining'] = String(tokensRemaining);
  }
  if (state.tokenQuota !== null) {
    headers['X-Quota-Tokens-Limit'] = String(state.tokenQuota);
    headers['X-Quota-Tokens-Remaining'] = String(tokensRemaining);
  }
  if (state.requestQuota !== null || state.tokenQuota !== null) headers['X-Quota-Reset'] = state.resetAt.toISOString();
  return headers;
}
