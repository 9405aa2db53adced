/**
 * What one generation costs a key, behind one small interface for the generation pipeline:
 *
 *   const usage = await accounting.begin(key, model);   // 402 when a quota is used up
 *   …cache or backend…
 *   await usage.settle(chargeFor(outcome, …));          // see billing.ts
 *
 * begin() reserves one request unit for keys with a quota (QuotaService, one conditional
 * statement that records the reservation's id); keys without a quota need no database on the
 * request path at all. settle() takes effect once, the first time it is called, so callers can
 * settle FREE in a `finally`: a charge without a unit gives the reservation back; a charge with
 * one records the outcome (usage-writer.ts: journaled, then written exactly once with the ledger
 * and the token quota) and charges the key's TPM window. Failures to write are retried by the
 * writer, never thrown: the client already has its answer, and the request quota was enforced
 * by the reservation.
 *
 * A reservation whose outcome the server could not learn (the statement timed out, or the
 * connection broke, after it was sent) answers 503, and its unit is given back once it can no
 * longer be running, if it was taken (API.md "Quotas": written exactly once).
 */
import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { AuthenticatedKey } from '../../contracts/authenticated-key';
import { Clock } from '../../contracts/clock';
import type { QuotaFigures } from '../../contracts/limit-figures';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import { DependencyDown } from '../../infra/lifecycle/dependency-health';
import { APP_LOGGER, type AppLogger } from '../../infra/logging/logger';
import { SPANS } from '../../infra/tracing/trace-attributes';
import { Tracing } from '../../infra/tracing/tracing';
import { RateLimitCounters } from '../../stores/rate-limit/rate-limit-counters';
import { RATE_LIMIT_WINDOW_MS } from '../../stores/rate-limit/rate-limit-window';
import { quotaPeriodAt } from '../limits/quota-period';
import { type QuotaReservation, QuotaService } from '../limits/quota.service';
import type { Charge } from './billing';
import { UsageWriter } from './usage-writer';

/** After a reservation's reply was lost, its give-back waits this much longer than a statement can run. */
const UNKNOWN_RESERVATION_MARGIN_MS = 1000;

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
    private readonly writer: UsageWriter,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
    private readonly tracing: Tracing,
  ) {}

  /** Reserves one request unit for a generation on `model` (keys with a quota), or throws 402 quota_exhausted. */
  async begin(key: AuthenticatedKey, model: string): Promise<GenerationUsage> {
    // A span only where there is work: a key without a quota costs nothing here.
    const reservation = hasQuota(key) ? await this.tracing.span(SPANS.quota, {}, () => this.reserve(key)) : null;
    let settled = false;
    let givenBack = false;
    return {
      get quota() {
        if (!reservation) return null;
        const { keyId: _, rid: __, ...figures } = reservation;
        return givenBack ? { ...figures, requestsUsed: figures.requestsUsed - 1 } : figures;
      },
      settle: async (charge, servedBy = model) => {
        if (settled) return;
        settled = true;
        if (charge.unit) {
          await this.charge(key, reservation, servedBy, charge);
        } else if (reservation) {
          const release = { rid: reservation.rid, keyId: key.id, resetAt: reservation.resetAt.toISOString(), after: 0 };
          givenBack = await this.writer.release(release);
        }
      },
    };
  }

  private async reserve(key: AuthenticatedKey): Promise<QuotaReservation> {
    const rid = randomUUID();
    const now = this.clock.now();
    const resetAt = quotaPeriodAt(now).resetAt.toISOString();
    // Journaled before it is made: a crash before the request ends gives the unit back.
    this.writer.reserving({ rid, keyId: key.id, resetAt });
    try {
      return await this.quota.reserve(key.id, rid, now, this.writer.unwrittenTokens(key.id, resetAt));
    } catch (error) {
      // Sent, but no answer: it may have committed. Settled once it cannot be running any more.
      if (error instanceof DependencyDown && error.cause !== undefined) {
        const after = Date.now() + this.config.dbTimeoutMs + UNKNOWN_RESERVATION_MARGIN_MS;
        void this.writer.release({ rid, keyId: key.id, resetAt, after });
      } else {
        this.writer.notReserved(rid); // refused (402), or never sent
      }
      throw error;
    }
  }

  private async charge(
    key: AuthenticatedKey,
    reservation: QuotaReservation | null,
    model: string,
    charge: Charge,
  ): Promise<void> {
    const { promptTokens, completionTokens, cached } = charge;
    this.writer.record(
      {
        keyId: key.id,
        day: this.clock.now().toISOString().slice(0, 10),
        model,
        cached,
        promptTokens,
        completionTokens,
        quotaResetAt: reservation ? reservation.resetAt.toISOString() : null,
      },
      reservation?.rid,
    );
    const tokens = promptTokens + completionTokens;
    if (tokens === 0 || key.tpmLimit === null) return;
    await this.counters
      .chargeTokens(key.id, RATE_LIMIT_WINDOW_MS, tokens)
      .catch((error: unknown) => this.failed('TPM charge', key, error));
  }

  private failed(what: string, key: AuthenticatedKey, error: unknown): void {
    this.logger.error(
      { key_id: key.id, err: error instanceof Error ? error : new Error(String(error)) },
      `usage accounting: ${what} failed`,
    );
  }
}
