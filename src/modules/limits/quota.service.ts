/**
 * Monthly quotas (API.md "Quotas") of keys that have one; keys without a quota never touch
 * these counters (their usage is in the ledger). The counters live only in the api_keys row, and every
 * change is one conditional SQL statement, so they hold exactly under concurrent requests on
 * any number of replicas (PostgreSQL re-checks the WHERE clause on the newest row version when
 * it waits for a row lock):
 * - reserve: one request unit, only while the period's usage is under both quotas; the same
 *   statement starts a new period when the stored one has ended (whichever replica gets there
 *   first does it; the others then see the new period);
 * - release: gives the unit back (failed generations are free);
 * - chargeTokens: adds the real token usage after the generation, batched per key
 *   (quota-token-charges.ts): the key's next reservation carries them in its own statement.
 * Release and token charges apply to the period the unit was reserved in, never to a later one.
 *
 * The token quota is checked before a generation (usage below the quota) and charged after it,
 * since a generation's size is unknown in advance: the requests in flight when the token quota
 * runs out can take usage past it by their own tokens. The request quota is never exceeded.
 */
import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { AppError } from '../../contracts/app-error';
import { Clock } from '../../contracts/clock';
import type { QuotaFigures } from '../../contracts/limit-figures';
import { Database } from '../../infra/database/database.service';
import { toNumberOrNull } from '../../infra/database/row-values';
import { LimitRejections, type QuotaType } from './limit-rejections';
import { quotaPeriodAt } from './quota-period';
import { QuotaTokenCharges } from './quota-token-charges';

/**
 * The key's quota state right after a unit was reserved for this request (requestsUsed includes
 * it; tokensUsed is before it). resetAt, the end of the period the unit was taken from, is also
 * the period's identity.
 */
export interface QuotaReservation extends QuotaFigures {
  keyId: string;
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
 * $1 key id, $2 now, $3/$4 start and end of the period `now` falls in, $5 token charges of
 * earlier requests of this period not written yet (folded in here, see chargeTokens). When the
 * stored period is over (`quota_reset_at <= now`), usage counts from zero in the new period.
 */
const RESERVE_SQL = `
UPDATE api_keys SET
  quota_period_start = CASE WHEN quota_reset_at <= $2::timestamptz THEN $3::timestamptz ELSE quota_period_start END,
  quota_reset_at = CASE WHEN quota_reset_at <= $2::timestamptz THEN $4::timestamptz ELSE quota_reset_at END,
  quota_requests_used = CASE WHEN quota_reset_at <= $2::timestamptz THEN 1 ELSE quota_requests_used + 1 END,
  quota_tokens_used = CASE WHEN quota_reset_at <= $2::timestamptz THEN 0 ELSE quota_tokens_used + $5::bigint END
WHERE id = $1
  AND (monthly_quota IS NULL
       OR CASE WHEN quota_reset_at <= $2::timestamptz THEN 0 ELSE quota_requests_used END < monthly_quota)
  AND (monthly_token_quota IS NULL
       OR CASE WHEN quota_reset_at <= $2::timestamptz THEN 0 ELSE quota_tokens_used + $5::bigint END < monthly_token_quota)
RETURNING ${QUOTA_COLUMNS}`;

const RELEASE_SQL = `
UPDATE api_keys SET quota_requests_used = quota_requests_used - 1
WHERE id = $1 AND quota_reset_at = $2::timestamptz AND quota_requests_used > 0`;

const READ_SQL = `SELECT ${QUOTA_COLUMNS} FROM api_keys WHERE id = $1`;

@Injectable()
export class QuotaService implements OnApplicationShutdown {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly rejections: LimitRejections,
    private readonly charges: QuotaTokenCharges,
  ) {}

  /** Before the database closes (LimitsModule is not global, so this runs first). */
  async onApplicationShutdown(): Promise<void> {
    await this.charges.flush();
  }

  /**
   * Reserves one request unit of the current period, or throws 402 quota_exhausted (with the
   * X-Quota-* headers and the reset time in its message).
   */
  async reserve(keyId: string): Promise<QuotaReservation> {
    const now = this.clock.now();
    const period = quotaPeriodAt(now);
    const resetAt = period.resetAt.toISOString();
    // This period's unwritten charges go along with the reservation (one statement for both);
    // pending charges only ever exist for the stored period, which is this one or has ended.
    const folded = this.charges.take(keyId, resetAt);
    let rows: QuotaRow[];
    try {
      ({ rows } = await this.db.query<QuotaRow>(RESERVE_SQL, [
        keyId,
        now.toISOString(),
        period.start.toISOString(),
        resetAt,
        folded,
      ]));
    } catch (error) {
      this.charges.add(keyId, resetAt, folded);
      throw error;
    }
    if (rows.length > 0) return this.toReservation(keyId, rows[0]);
    this.charges.add(keyId, resetAt, folded); // refused: nothing of the statement was written
    throw await this.exhausted(keyId, now);
  }

  /** Gives the reserved unit back, if its period is still the current one. */
  async release(reservation: QuotaReservation): Promise<void> {
    await this.db.query(RELEASE_SQL, [reservation.keyId, reservation.resetAt.toISOString()]);
  }

  /** Charges the real token usage of a request to the period its unit was reserved in (batched). */
  chargeTokens(reservation: QuotaReservation, tokens: number): void {
    this.charges.add(reservation.keyId, reservation.resetAt.toISOString(), tokens);
  }

  /** Writes every queued token charge (reads of the counters call this first). */
  flushCharges(): Promise<void> {
    return this.charges.flush();
  }

  /** The 402 for a reservation that matched no row (read again only on this cold path). */
  private async exhausted(keyId: string, now: Date): Promise<AppError> {
    const { rows } = await this.db.query<QuotaRow>(READ_SQL, [keyId]);
    if (rows.length === 0)
      return new AppError('invalid_api_key', 'the API key is unknown, revoked, inactive or expired');
    const state = this.toReservation(keyId, rows[0]);
    // A period that has ended counts as a fresh one (only a quota of 0 refuses there).
    if (state.resetAt <= now) {
      Object.assign(state, { resetAt: quotaPeriodAt(now).resetAt, requestsUsed: 0, tokensUsed: 0 });
    }
    const type: QuotaType =
      state.requestQuota !== null && state.requestsUsed >= state.requestQuota ? 'requests' : 'tokens';
    this.rejections.quotaExhausted(type);
    const limit = type === 'requests' ? `request quota of ${state.requestQuota}` : `token quota of ${state.tokenQuota}`;
    const resetAt = state.resetAt.toISOString();
    const { keyId: _, ...figures } = state;
    return new AppError('quota_exhausted', `the monthly ${limit} is used up; it resets at ${resetAt}`, {
      figures: { quota: figures },
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
