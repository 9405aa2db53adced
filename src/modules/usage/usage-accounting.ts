/**
 * What one generation costs a key, behind one small interface for the generation pipeline:
 *
 *   const usage = await accounting.begin(key, model);   // 402 when a quota is used up
 *   …cache or backend…
 *   await usage.settle(chargeFor(outcome, …));          // see billing.ts
 *
 * begin() reserves one request unit for keys with a quota (QuotaService, one conditional
 * UPDATE); keys without a quota need no database on the request path at all. settle() takes
 * effect once, the first time it is called, so callers can settle FREE in a `finally`: a charge
 * without a unit gives the reservation back; a charge with one adds the outcome to the usage
 * ledger (in memory, written in batches) and charges the token quota and the key's TPM window.
 * Failures to charge are logged, never thrown: the client already has its answer, and the
 * request quota was enforced by the reservation.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { AuthenticatedKey } from '../../contracts/authenticated-key';
import { Clock } from '../../contracts/clock';
import { APP_LOGGER, type AppLogger } from '../../infra/logging/logger';
import type { QuotaFigures } from '../../contracts/limit-figures';
import { type QuotaReservation, QuotaService } from '../limits/quota.service';
import { RateLimitCounters } from '../../stores/rate-limit/rate-limit-counters';
import { RATE_LIMIT_WINDOW_MS } from '../../stores/rate-limit/rate-limit-window';
import { SPANS } from '../../infra/tracing/trace-attributes';
import { Tracing } from '../../infra/tracing/tracing';
import type { Charge } from './billing';
import { UsageLedgerWriter } from './usage-ledger.writer';

export interface GenerationUsage {
  /**
   * The key's quota figures for the response (null when the key has no quota); after a free
   * settlement they count the unit as given back.
   */
  readonly quota: QuotaFigures | null;
  /** Applies the request's charge; `model` is the one that answered (a fallback's name, say). */
  settle(charge: Charge, model?: string): Promise<void>;
}

export function hasQuota(key: AuthenticatedKey): boolean {
  return key.monthlyQuota !== null || key.monthlyTokenQuota !== null;
}

@Injectable()
export class UsageAccounting {
  constructor(
    private readonly quota: QuotaService,
    private readonly counters: RateLimitCounters,
    private readonly ledger: UsageLedgerWriter,
    private readonly clock: Clock,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
    private readonly tracing: Tracing,
  ) {}

  /** Reserves one request unit for a generation on `model` (keys with a quota), or throws 402 quota_exhausted. */
  async begin(key: AuthenticatedKey, model: string): Promise<GenerationUsage> {
    // A span only where there is work: a key without a quota costs nothing here.
    const reservation = hasQuota(key)
      ? await this.tracing.span(SPANS.quota, {}, () => this.quota.reserve(key.id))
      : null;
    let settled = false;
    let givenBack = false;
    return {
      get quota() {
        if (!reservation) return null;
        const { keyId: _, ...figures } = reservation;
        return givenBack ? { ...figures, requestsUsed: figures.requestsUsed - 1 } : figures;
      },
      settle: async (charge, servedBy = model) => {
        if (settled) return;
        settled = true;
        if (charge.unit) {
          await this.charge(key, reservation, servedBy, charge);
        } else if (reservation) {
          await this.quota.release(reservation).then(
            () => (givenBack = true),
            (error: unknown) => this.failed('quota release', key, error),
          );
        }
      },
    };
  }

  private async charge(
    key: AuthenticatedKey,
    reservation: QuotaReservation | null,
    model: string,
    charge: Charge,
  ): Promise<void> {
    const { promptTokens, completionTokens, cached } = charge;
    this.ledger.record({ keyId: key.id, model, at: this.clock.now(), cached, promptTokens, completionTokens });
    const tokens = promptTokens + completionTokens;
    if (tokens === 0) return;
    await Promise.all([
      reservation ? this.quota.chargeTokens(reservation, tokens) : undefined,
      key.tpmLimit === null
        ? undefined
        : this.counters
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
