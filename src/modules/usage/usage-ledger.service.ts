/**
 * Reads the usage ledgers: per key (key_usage_daily) and per team (team_usage_daily, what its
 * keys used while they belonged to it), per UTC day and model, with the cost (API.md "Teams,
 * prices and budgets"). This replica's pending sums are written first; other replicas' appear
 * within a flush interval.
 */
import { Injectable } from '@nestjs/common';
import { costNumber } from '../../contracts/cost';
import { Database } from '../../infra/database/database.service';
import { UsageWriter } from './usage-writer';

export interface DailyUsage {
  date: string;
  model: string;
  requests: number;
  cached_requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  /** In CURRENCY. */
  cost: number;
}

export interface UsageTotal {
  requests: number;
  tokens: number;
  /** In CURRENCY, as the exact decimal the database summed. */
  cost: string;
}

interface DailyUsageRow {
  date: string;
  model: string;
  requests: number | string;
  cached_requests: number | string;
  prompt_tokens: number | string | bigint;
  completion_tokens: number | string | bigint;
  cost: number | string | null;
}

/** Whose ledger: a key's, or a team's. */
export type LedgerOwner = 'key' | 'team';

const LEDGER = {
  key: { table: 'key_usage_daily', column: 'key_id' },
  team: { table: 'team_usage_daily', column: 'team_id' },
} as const;

@Injectable()
export class UsageLedgerService {
  constructor(
    private readonly db: Database,
    private readonly writer: UsageWriter,
  ) {}

  /**
   * Days in [from, to] (inclusive, YYYY-MM-DD), oldest first, then by model: of one key (or
   * team, `owner`), or summed over every key (`ownerId` null).
   */
  async daily(ownerId: string | null, from: string, to: string, owner: LedgerOwner = 'key'): Promise<DailyUsage[]> {
    await this.writer.flush();
    const { table, column } = LEDGER[owner];
    const { rows } = await this.db.query<DailyUsageRow>(
      `SELECT to_char(day, 'YYYY-MM-DD') AS date, model, sum(requests) AS requests,
              sum(cached_requests) AS cached_requests, sum(prompt_tokens) AS prompt_tokens,
              sum(completion_tokens) AS completion_tokens, sum(cost)::text AS cost
         FROM ${table}
        WHERE ($1::uuid IS NULL OR ${column} = $1::uuid) AND day BETWEEN $2::date AND $3::date
        GROUP BY day, model
        ORDER BY day, model`,
      [ownerId, from, to],
    );
    return rows.map((row) => ({
      date: row.date,
      model: row.model,
      requests: Number(row.requests),
      cached_requests: Number(row.cached_requests),
      prompt_tokens: Number(row.prompt_tokens),
      completion_tokens: Number(row.completion_tokens),
      cost: costNumber(row.cost),
    }));
  }

  /** Requests, tokens and cost of a key (or team) from the day of `since` (UTC) on: a period's usage from the ledger. */
  async totalSince(ownerId: string, since: Date, owner: LedgerOwner = 'key'): Promise<UsageTotal> {
    await this.writer.flush();
    const { table, column } = LEDGER[owner];
    const { rows } = await this.db.query<{
      requests: string | number | null;
      tokens: string | number | bigint | null;
      cost: string | null;
    }>(
      `SELECT sum(requests) AS requests, sum(prompt_tokens + completion_tokens) AS tokens, coalesce(sum(cost), 0)::text AS cost
         FROM ${table} WHERE ${column} = $1 AND day >= $2::date`,
      [ownerId, since.toISOString().slice(0, 10)],
    );
    return {
      requests: Number(rows[0]?.requests ?? 0),
      tokens: Number(rows[0]?.tokens ?? 0),
      cost: rows[0]?.cost ?? '0',
    };
  }
}
