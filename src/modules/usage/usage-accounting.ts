/**
 * What one generation costs a key and its team, behind one small interface for the pipeline:
 *
 *   const usage = await accounting.begin(key, model, largestCost);   // 402 when a limit is used up
 *   …cache or backend…
 *   await usage.settle(chargeFor(outcome, …));                         // see billing.ts
 *
 * begin() reserves one request unit, and the request's largest possible cost where a budget is
 * set, for the key and then for its team when they have a quota or a budget (QuotaService: one
 * conditional statement each, recording the reservation's id); a team that refuses gives the
 * key's reservation back. Keys and teams without either need no database on the request path at
 * all. settle() takes effect once, the first time it is called, so callers can settle FREE in a
 * `finally`: a charge without a unit gives the reservations back; a charge with one records the
 * outcome with its cost (usage-writer.ts: journaled, then written exactly once in a batch with
 * the ledgers, the token quotas, the spend and the release of its budget reservations) and
 * charges the TPM windows. Failures to write are
 * retried by the writer, never thrown: the client already has its answer, and the limits were
 * enforced by the reservations.
 *
 * A reservation whose outcome the server could not learn (the statement timed out, or the
 * connection broke, after it was sent) answers 503, and its unit is given back once it can no
 * longer be running, if it was taken (API.md "Quotas": written exactly once).
 */
import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { AuthenticatedKey, LimitOwnerKind, TeamLimits } from '../../contracts/authenticated-key';
import { Clock } from '../../contracts/clock';
import { costDecimal, costOf, type ModelPricing } from '../../contracts/cost';
import type { QuotaFigures } from '../../contracts/limit-figures';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import { DependencyDown } from '../../infra/lifecycle/dependency-health';
import { APP_LOGGER, type AppLogger } from '../../infra/logging/logger';
import { LlmMetricsService } from '../../infra/metrics/llm-metrics.service';
import { SPANS } from '../../infra/tracing/trace-attributes';
import { Tracing } from '../../infra/tracing/tracing';
import { RateLimitCounters } from '../../stores/rate-limit/rate-limit-counters';
import { RATE_LIMIT_WINDOW_MS } from '../../stores/rate-limit/rate-limit-window';
import { quotaPeriodAt } from '../limits/quota-period';
import { type QuotaReservation, QuotaService } from '../limits/quota.service';
import { teamTracker } from '../limits/rate-limits';
import { tighterQuota } from '../limits/tighter-figures';
import type { Charge } from './billing';
import { UsageWriter } from './usage-writer';

/** After a reservation's reply was lost, its give-back waits this much longer than a statement can run. */
const UNKNOWN_RESERVATION_MARGIN_MS = 1000;

export interface GenerationUsage {
  /**
   * The quota figures for the response, of the key or its team, whichever has less left (null
   * when neither has a quota); after a free settlement they count the unit as given back.
   */
  readonly quota: QuotaFigures | null;
  /** Applies the request's charge; `model` is the one that answered (a fallback's name, say). */
  settle(charge: Charge, model?: string): Promise<void>;
}

type LimitHolder = Pick<TeamLimits, 'monthlyQuota' | 'monthlyTokenQuota' | 'monthlyBudget'>;

/** A key or team whose requests reserve in the database: it has a quota or a budget. */
export function hasQuota(owner: LimitHolder): boolean {
  return owner.monthlyQuota !== null || owner.monthlyTokenQuota !== null || owner.monthlyBudget !== null;
}

interface Held {
  owner: LimitOwnerKind;
  ownerId: string;
  reservation: QuotaReservation;
}

@Injectable()
export class UsageAccounting {
  private readonly pricing: Map<string, ModelPricing | null>;

  constructor(
    private readonly quota: QuotaService,
    private readonly counters: RateLimitCounters,
    private readonly writer: UsageWriter,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
    private readonly tracing: Tracing,
    private readonly metrics: LlmMetricsService,
  ) {
    this.pricing = new Map(config.models.models.map((model) => [model.name, model.pricing]));
  }

  /**
   * Reserves one request unit for a generation on `model`, and `largestCost` (femto-units) where
   * a budget is set, for the key and its team; or throws 402 quota_exhausted / budget_exhausted
   * naming the one that refused (`param`).
   */
  async begin(key: AuthenticatedKey, model: string, largestCost = 0n): Promise<GenerationUsage> {
    const rid = randomUUID();
    const team = key.team;
    const held: Held[] = [];
    // A span only where there is work: a key and team without quota or budget cost nothing here.
    if (hasQuota(key) || (team && hasQuota(team))) {
      await this.tracing.span(SPANS.quota, {}, async () => {
        if (hasQuota(key)) held.push(await this.reserve('key', key.id, rid, largestCost));
        if (!team || !hasQuota(team)) return;
        try {
          held.push(await this.reserve('team', team.id, rid, largestCost));
        } catch (error) {
          for (const { owner, ownerId, reservation } of held) await this.giveBack(owner, ownerId, reservation);
          throw error;
        }
      });
    }
    let settled = false;
    let givenBack = false;
    return {
      get quota() {
        const figures = tighterQuota(held.map(({ reservation }) => withoutIds(reservation)));
        if (!figures) return null;
        return givenBack ? { ...figures, requestsUsed: figures.requestsUsed - 1 } : figures;
      },
      settle: async (charge, servedBy = model) => {
        if (settled) return;
        settled = true;
        if (charge.unit) {
          await this.charge(key, rid, held, servedBy, charge);
          return;
        }
        const done = await Promise.all(
          held.map(({ owner, ownerId, reservation }) => this.giveBack(owner, ownerId, reservation)),
        );
        givenBack = done.some(Boolean);
      },
    };
  }

  private giveBack(owner: LimitOwnerKind, ownerId: string, reservation: QuotaReservation): Promise<boolean> {
    return this.writer.release({
      rid: reservation.rid,
      keyId: ownerId,
      ...(owner === 'team' ? { team: true as const } : {}),
      resetAt: reservation.resetAt.toISOString(),
      after: 0,
    });
  }

  private async reserve(owner: LimitOwnerKind, ownerId: string, rid: string, budget: bigint): Promise<Held> {
    const now = this.clock.now();
    const resetAt = quotaPeriodAt(now).resetAt.toISOString();
    const team = owner === 'team' ? { team: true as const } : {};
    // Journaled before it is made: a crash before the request ends gives the unit back.
    this.writer.reserving({ rid, keyId: ownerId, ...team, resetAt });
    try {
      const unwritten = this.writer.unwrittenTokens(ownerId, resetAt, owner === 'team');
      const options = { owner, budget, holder: this.writer.instance };
      return { owner, ownerId, reservation: await this.quota.reserve(ownerId, rid, now, unwritten, options) };
    } catch (error) {
      // Sent, but no answer: it may have committed. Settled once it cannot be running any more.
      if (error instanceof DependencyDown && error.cause !== undefined) {
        const after = Date.now() + this.config.dbTimeoutMs + UNKNOWN_RESERVATION_MARGIN_MS;
        void this.writer.release({ rid, keyId: ownerId, ...team, resetAt, after });
      } else {
        this.writer.notReserved({ rid, ...team }); // refused (402), or never sent
      }
      throw error;
    }
  }

  private async charge(key: AuthenticatedKey, rid: string, held: Held[], model: string, charge: Charge): Promise<void> {
    const { promptTokens, completionTokens, cached } = charge;
    const cost = costOf(charge, this.pricing.get(model) ?? null);
    const period = (owner: LimitOwnerKind) => {
      const reservation = held.find((h) => h.owner === owner)?.reservation;
      return reservation ? reservation.resetAt.toISOString() : null;
    };
    // Budget reservations settle to the real cost in the batch that writes this usage.
    const budgeted = held.some(({ reservation }) => (reservation.budgetReserved ?? 0n) > 0n);
    this.writer.record(
      {
        keyId: key.id,
        day: this.clock.now().toISOString().slice(0, 10),
        model,
        cached,
        promptTokens,
        completionTokens,
        quotaResetAt: period('key'),
        teamId: key.team?.id ?? null,
        teamQuotaResetAt: period('team'),
        cost: cost.toString(),
        ...(budgeted ? { settles: rid } : {}),
      },
      held.length > 0 ? rid : undefined,
    );
    if (cost > 0n) this.metrics.costCharged(model, Number(costDecimal(cost)));
    const tokens = promptTokens + completionTokens;
    if (tokens === 0) return;
    const windows: string[] = [];
    if (key.tpmLimit !== null) windows.push(key.id);
    if (key.team && key.team.tpmLimit !== null) windows.push(teamTracker(key.team.id));
    await Promise.all(
      windows.map((tracker) =>
        this.counters
          .chargeTokens(tracker, RATE_LIMIT_WINDOW_MS, tokens)
          .catch((error: unknown) => this.failed('TPM charge', key, error)),
      ),
    );
  }

  private failed(what: string, key: AuthenticatedKey, error: unknown): void {
    this.logger.error(
      { key_id: key.id, err: error instanceof Error ? error : new Error(String(error)) },
      `usage accounting: ${what} failed`,
    );
  }
}

function withoutIds(reservation: QuotaReservation): QuotaFigures {
  const { keyId: _, rid: __, budgetReserved: ___, ...figures } = reservation;
  return figures;
}
