/**
 * What one generation costs a key, behind one small interface for the generation handler:
 *
 *   const usage = await accounting.begin(key, model);   // 402 when a quota is used up
 *   …cache or backend…
 *   await usage.complete(tokenUsage, { cached, model }); // charge: tokens, TPM, ledger
 *   await usage.release();                               // otherwise: the unit goes back
 *
 * begin() reserves one request unit (QuotaService). Exactly one of complete() / release()
 * takes effect, the first called; release() after complete() does nothing, so callers can
 * release in a `finally`. complete() charges the token quota and the key's TPM window with the
 * real usage (a cache hit: zero tokens) and adds the outcome to the usage ledger (in memory,
 * written in batches). Failures to charge are logged, never thrown: the client already has
 * its answer, and the request quota was enforced by the reservation.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { AuthenticatedKey } from '../auth/auth.types';
import { Clock } from '../common/clock';
import type { TokenUsage } from '../generation/providers/provider.types';
import { APP_LOGGER, type AppLogger } from '../logging/logger';
import { type QuotaReservation, QuotaService, quotaHeaders } from '../quota/quota.service';
import { RATE_LIMIT_WINDOW_MS } from '../rate-limit/rate-limit-window';
import { RateLimitStore } from '../rate-limit/rate-limit.store';
import { UsageLedgerWriter } from './usage-ledger.writer';

export interface CompleteOptions {
  /** A completion-cache hit: one request unit, zero tokens, counted as a cached request. */
  cached?: boolean;
  /** The model that answered, when a fallback served instead of the requested one. */
  model?: string;
}

export interface GenerationUsage {
  /**
   * X-Quota-* headers for the response (empty when the key has no quota); after a release they
   * count the unit as given back.
   */
  readonly headers: Record<string, string>;
  complete(usage: TokenUsage, options?: CompleteOptions): Promise<void>;
  release(): Promise<void>;
}

@Injectable()
export class UsageAccounting {
  constructor(
    private readonly quota: QuotaService,
    private readonly rateLimits: RateLimitStore,
    private readonly ledger: UsageLedgerWriter,
    private readonly clock: Clock,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
  ) {}

  /** Reserves one request unit for a generation on `model`, or throws 402 quota_exhausted. */
  async begin(key: AuthenticatedKey, model: string): Promise<GenerationUsage> {
    const reservation = await this.quota.reserve(key.id);
    let settled = false;
    let released = false;
    const settle = (): boolean => !settled && (settled = true);
    return {
      get headers() {
        return quotaHeaders(released ? { ...reservation, requestsUsed: reservation.requestsUsed - 1 } : reservation);
      },
      complete: async (usage, options = {}) => {
        if (settle()) await this.charge(key, reservation, options.model ?? model, usage, options.cached ?? false);
      },
      release: async () => {
        if (!settle()) return;
        await this.quota.release(reservation).then(
          () => (released = true),
          (error: unknown) => this.failed('quota release', key, error),
        );
      },
    };
  }

  private async charge(
    key: AuthenticatedKey,
    reservation: QuotaReservation,
    model: string,
    usage: TokenUsage,
    cached: boolean,
  ): Promise<void> {
    const promptTokens = cached ? 0 : usage.promptTokens;
    const completionTokens = cached ? 0 : usage.completionTokens;
    this.ledger.record({ keyId: key.id, model, at: this.clock.now(), cached, promptTokens, completionTokens });
    const tokens = promptTokens + completionTokens;
    if (tokens === 0) return;
    await Promise.all([
      this.quota
        .chargeTokens(reservation, tokens)
        .catch((error: unknown) => this.failed('token quota charge', key, error)),
      key.tpmLimit === null
        ? undefined
        : this.rateLimits
            .chargeTokens(key.id, RATE_LIMIT_WINDOW_MS, tokens)
            .catch((error: unknown) => this.failed('TPM charge', key, error)),
    ]);
  }

  private failed(what: string, key: AuthenticatedKey, error: unknown): void {
    this.logger.error(
      { key_id: key.id, err: error instanceof Error ? error : new Error(String(error)) },
      `usage accounting: ${what} failed`,
    );
  }
}
