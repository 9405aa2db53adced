/**
 * The background side of budgets (API.md "Teams, prices and budgets"), on every replica:
 * - renews the budget reservations this process holds (one statement by holder, every
 *   RENEW_MS), so a reservation lives as long as its request and never longer: a process that
 *   dies stops renewing, and its reservations lapse BUDGET_LEASE_SECONDS later;
 * - sweeps lapsed reservations (every SWEEP_MS, any replica; each row is given back once, see
 *   BUDGET_SWEEP_SQL): a crashed replica's reservations are released within
 *   BUDGET_LEASE_SECONDS + SWEEP_MS (25 s; API.md asks for 60);
 * - refreshes `llm_budget_used_ratio` (every GAUGE_MS, and after a scrape at most every
 *   SCRAPE_REFRESH_MS) from the database, so the alert on a key or team past 80 % of its budget
 *   sees every replica's spend.
 * All three are retried writes nobody waits for: a database outage only delays them.
 */
import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Database } from '../../infra/database/database.service';
import { LlmMetricsService } from '../../infra/metrics/llm-metrics.service';
import { BUDGET_LEASE_SECONDS } from '../limits/quota.service';
import { BUDGET_RENEW_SQL, BUDGET_SWEEP_SQL } from './usage-writes.sql';
import { UsageWriter } from './usage-writer';

const RENEW_MS = 5_000;
const SWEEP_MS = 5_000;
const GAUGE_MS = 15_000;
/** A scrape refreshes the budgets' gauge at most this often. */
const SCRAPE_REFRESH_MS = 1_000;

/** Settled spend over budget in the current period (an ended period has spent nothing yet). */
const BUDGETS_USED_SQL = `
SELECT 'team' AS owner, id::text AS id, name, CASE WHEN quota_reset_at <= now() THEN 0 ELSE budget_spent / monthly_budget END AS ratio
  FROM teams WHERE monthly_budget > 0
UNION ALL
SELECT 'key', id::text, name, CASE WHEN quota_reset_at <= now() THEN 0 ELSE budget_spent / monthly_budget END
  FROM api_keys WHERE monthly_budget > 0 AND revoked_at IS NULL`;

@Injectable()
export class BudgetUpkeep implements OnModuleInit, OnApplicationShutdown {
  private readonly timers: NodeJS.Timeout[] = [];
  private lastRefreshAt = 0;

  constructor(
    private readonly db: Database,
    private readonly writer: UsageWriter,
    private readonly metrics: LlmMetricsService,
  ) {}

  onModuleInit(): void {
    this.every(RENEW_MS, () => this.renew());
    this.every(SWEEP_MS, () => this.sweep());
    this.every(GAUGE_MS, () => this.refreshGauges());
    this.metrics.onBudgetScrape = () => {
      if (Date.now() - this.lastRefreshAt >= SCRAPE_REFRESH_MS) void this.refreshGauges();
    };
    void this.refreshGauges();
  }

  onApplicationShutdown(): void {
    for (const timer of this.timers) clearInterval(timer);
  }

  /** Extends every reservation this process holds by another lease. */
  async renew(): Promise<void> {
    await this.background(BUDGET_RENEW_SQL(BUDGET_LEASE_SECONDS), [this.writer.instance]);
  }

  /** Gives back the reservations whose holder stopped renewing them. */
  async sweep(): Promise<void> {
    await this.background(BUDGET_SWEEP_SQL);
  }

  async refreshGauges(): Promise<void> {
    this.lastRefreshAt = Date.now();
    const rows = await this.background<{ owner: string; id: string; name: string; ratio: string | number }>(
      BUDGETS_USED_SQL,
    );
    if (rows) this.metrics.budgetsUsed(rows.map((row) => ({ ...row, ratio: Number(row.ratio) })));
  }

  private every(ms: number, run: () => Promise<void>): void {
    const timer = setInterval(() => void run(), ms);
    timer.unref();
    this.timers.push(timer);
  }

  private async background<T>(text: string, values: unknown[] = []): Promise<T[] | null> {
    try {
      return (await this.db.query<T>(text, values, { background: true })).rows;
    } catch {
      return null; // the next round retries
    }
  }
}
