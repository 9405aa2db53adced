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
 * - chargeTokens: adds the real token usage after the generation. Charges are batched per key:
 *   the key's next reservation carries them in its own statement, or, if none comes within
 *   CHARGE_FLUSH_MS, one UPDATE writes all the key's charges (so a key with a quota costs one
 *   statement per request); charges that could not be written (database down) are kept and
 *   written when it is back, and at shutdown.
 * Release and token charges apply to the period the unit was reserved in, never to a later one.
 *
 * The token quota is checked before a generation (usage below the quota) and charged after it,
 * since a generation's size is unknown in advance: the requests in flight when the token quota
 * runs out can take usage past it by their own tokens. The request quota is never exceeded.
 */
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { AppError } from '../../contracts/app-error';
import { Clock } from '../../contracts/clock';
import { DatabaseRejected } from '../../infra/database/database-errors';
import { Database } from '../../infra/database/database.service';
import { APP_LOGGER, type AppLogger } from '../../infra/logging/logger';
import { LimitEvents, type QuotaType } from './limit-events';
import { toNumberOrNull } from '../auth/api-key.row';
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

const CHARGE_TOKENS_SQL = `
UPDATE api_keys SET quota_tokens_used = quota_tokens_used + $3
WHERE id = $1 AND quota_reset_at = $2::timestamptz`;

const READ_SQL = `SELECT ${QUOTA_COLUMNS} FROM api_keys WHERE id = $1`;

/** Retry pace of token charges that could not be written. */
const CHARGE_RETRY_MS = 1000;
/**
 * How long a token charge waits for the key's next reservation to carry it before it is written
 * by itself: the delay other replicas may see a charge late (the token quota is checked before a
 * generation and charged after it anyway).
 */
const CHARGE_FLUSH_MS = 100;

interface PendingCharge {
  keyId: string;
  resetAt: string;
  tokens: number;
}

@Injectable()
export class QuotaService implements OnApplicationShutdown {
  private pending = new Map<string, PendingCharge>();
  private flushTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly events: LimitEvents,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
  ) {}

  /** Before the database closes (QuotaModule is not global, so this runs first). */
  async onApplicationShutdown(): Promise<void> {
    await this.flushCharges();
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
    const folded = this.takePending(keyId, resetAt);
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
      this.putBack(keyId, resetAt, folded);
      throw error;
    }
    if (rows.length > 0) return this.toReservation(keyId, rows[0]);
    this.putBack(keyId, resetAt, folded); // refused: nothing of the statement was written
    throw await this.exhausted(keyId, now);
  }

  /** Gives the reserved unit back, if its period is still the current one. */
  async release(reservation: QuotaReservation): Promise<void> {
    await this.db.query(RELEASE_SQL, [reservation.keyId, reservation.resetAt.toISOString()]);
  }

  /**
   * Queues a token charge: it goes with the key's next reservation, or is written by itself within
   * CHARGE_FLUSH_MS (summed with the key's other charges meanwhile).
   */
  chargeTokens(reservation: QuotaReservation, tokens: number): void {
    if (tokens <= 0) return;
    this.addPending(reservation.keyId, reservation.resetAt.toISOString(), tokens);
    this.scheduleFlush(CHARGE_FLUSH_MS);
  }

  private takePending(keyId: string, resetAt: string): number {
    const id = `${keyId}|${resetAt}`;
    const tokens = this.pending.get(id)?.tokens ?? 0;
    this.pending.delete(id);
    return tokens;
  }

  private putBack(keyId: string, resetAt: string, tokens: number): void {
    if (tokens <= 0) return;
    this.addPending(keyId, resetAt, tokens);
    this.scheduleFlush(CHARGE_FLUSH_MS);
  }

  /** Writes every queued token charge (reads of the counters call this first). */
  flushCharges(): Promise<void> {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    this.flushing = this.flushing.then(() => this.writeCharges());
    return this.flushing;
  }

  private addPending(keyId: string, resetAt: string, tokens: number): void {
    const id = `${keyId}|${resetAt}`;
    const entry = this.pending.get(id);
    if (entry) entry.tokens += tokens;
    else this.pending.set(id, { keyId, resetAt, tokens });
  }

  private scheduleFlush(delayMs: number): void {
    if (this.flushTimer) return;
    const run = () => {
      this.flushTimer = null;
      void this.flushCharges();
    };
    this.flushTimer = setTimeout(run, delayMs).unref();
  }

  private async writeCharges(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    await Promise.all(
      batch.map(async (charge) => {
        try {
          await this.db.query(CHARGE_TOKENS_SQL, [charge.keyId, charge.resetAt, charge.tokens]);
        } catch (error) {
          if (error instanceof DatabaseRejected) {
            this.logger.error({ key_id: charge.keyId, tokens: charge.tokens }, 'quota: token charge rejected; dropped');
            return;
          }
          this.addPending(charge.keyId, charge.resetAt, charge.tokens);
          this.scheduleFlush(CHARGE_RETRY_MS);
        }
      }),
    );
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
