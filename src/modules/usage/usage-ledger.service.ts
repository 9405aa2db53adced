/**
 * Reads the per-key, per-UTC-day, per-model usage ledger (table key_usage_daily). This
 * replica's pending sums are written first; other replicas' appear within a flush interval.
 */
import { Injectable } from '@nestjs/common';
import { Database } from '../../infra/database/database.service';
import { UsageWriter } from './usage-writer';

export interface DailyUsage {
  date: string;
  model: string;
  requests: number;
  cached_requests: number;
  prompt_tokens: number;
  completion_tokens: number;
}

interface DailyUsageRow {
  date: string;
  model: string;
  requests: number | string;
  cached_requests: number | string;
  prompt_tokens: number | string | bigint;
  completion_tokens: number | string | bigint;
}

@Injectable()
export class UsageLedgerService {
  constructor(
    private readonly db: Database,
    private readonly writer: UsageWriter,
  ) {}

  /**
   * Days in [from, to] (inclusive, YYYY-MM-DD), oldest first, then by model: of one key, or
   * summed over every key (`keyId` null).
   */
  async daily(keyId: string | null, from: string, to: string): Promise<DailyUsage[]> {
    await this.writer.flush();
    const { rows } = await this.db.query<DailyUsageRow>(
      `SELECT to_char(day, 'YYYY-MM-DD') AS date, model, sum(requests) AS requests,
              sum(cached_requests) AS cached_requests, sum(prompt_tokens) AS prompt_tokens,
              sum(completion_tokens) AS completion_tokens
         FROM key_usage_daily
        WHERE ($1::uuid IS NULL OR key_id = $1::uuid) AND day BETWEEN $2::date AND $3::date
        GROUP BY day, model
        ORDER BY day, model`,
      [keyId, from, to],
    );
    return rows.map((row) => ({
      date: row.date,
      model: row.model,
      requests: Number(row.requests),
      cached_requests: Number(row.cached_requests),
      prompt_tokens: Number(row.prompt_tokens),
      completion_tokens: Number(row.completion_tokens),
    }));
  }

  /** Requests and tokens of `keyId` from the day of `since` (UTC) on: a quota period's usage from the ledger. */
  async totalSince(keyId: string, since: Date): Promise<{ requests: number; tokens: number }> {
    await this.writer.flush();
    const { rows } = await this.db.query<{ requests: string | number | null; tokens: string | number | bigint | null }>(
      `SELECT sum(requests) AS requests, sum(prompt_tokens + completion_tokens) AS tokens
         FROM key_usage_daily WHERE key_id = $1 AND day >= $2::date`,
      [keyId, since.toISOString().slice(0, 10)],
    );
    return { requests: Number(rows[0]?.requests ?? 0), tokens: Number(rows[0]?.tokens ?? 0) };
  }
}
