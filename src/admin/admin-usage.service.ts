/**
 * Usage over all keys (GET /admin/usage): the daily ledger summed per UTC day and model, for
 * the console's overview. This replica's pending ledger sums are written first.
 */
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { Clock } from '../common/clock';
import type { DailyUsage } from '../usage/usage-ledger.service';
import { UsageLedgerWriter } from '../usage/usage-ledger.writer';
import { parseDayRange } from './admin-query';

/** Sums arrive as text (bigint) on PostgreSQL and as numbers on PGlite: one conversion for both. */
const COUNTERS = ['requests', 'cached_requests', 'prompt_tokens', 'completion_tokens'] as const;

@Injectable()
export class AdminUsageService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly writer: UsageLedgerWriter,
    private readonly clock: Clock,
  ) {}

  async totals(fromParam: unknown, toParam: unknown): Promise<{ from: string; to: string; data: DailyUsage[] }> {
    const { from, to } = parseDayRange(fromParam, toParam, this.clock.now());
    await this.writer.flush();
    const rows: Record<string, unknown>[] = await this.db.query(
      `SELECT to_char(day, 'YYYY-MM-DD') AS date, model,
              SUM(requests) AS requests, SUM(cached_requests) AS cached_requests,
              SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens
         FROM key_usage_daily
        WHERE day BETWEEN $1::date AND $2::date
        GROUP BY day, model
        ORDER BY day, model`,
      [from, to],
    );
    const data = rows.map((row) => {
      const counters = Object.fromEntries(COUNTERS.map((name) => [name, Number(row[name])]));
      return { date: String(row.date), model: String(row.model), ...counters } as DailyUsage;
    });
    return { from, to, data };
  }
}
