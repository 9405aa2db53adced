/**
 * Writes the usage ledger (key_usage_daily) without a database write per request: outcomes
 * are summed in memory per (key, UTC day, model) and written by one upsert per flush, every
 * FLUSH_INTERVAL_MS, before this replica reads the ledger, and at shutdown. Each replica adds
 * its own sums, so replicas never overwrite each other. A crash loses at most the sums of the
 * last interval; the quota counters that limits rely on are written per request elsewhere.
 */
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { APP_LOGGER, type AppLogger } from '../logging/logger';

/** How often pending sums are written, in ms (a provider, so tests can turn the timer off with 0). */
export const LEDGER_FLUSH_INTERVAL_MS = Symbol('LEDGER_FLUSH_INTERVAL_MS');
export const DEFAULT_FLUSH_INTERVAL_MS = 1000;
/** Rows per INSERT statement (7 parameters each, far below PostgreSQL's 65535). */
const ROWS_PER_STATEMENT = 500;

export interface LedgerEntry {
  keyId: string;
  model: string;
  /** When the generation finished; its UTC day is the ledger day. */
  at: Date;
  cached: boolean;
  promptTokens: number;
  completionTokens: number;
}

interface DailySums {
  keyId: string;
  day: string;
  model: string;
  requests: number;
  cachedRequests: number;
  promptTokens: number;
  completionTokens: number;
}

const sumsId = (keyId: string, day: string, model: string): string => `${keyId}\u0000${day}\u0000${model}`;

function upsertSql(rows: number): string {
  const values = Array.from({ length: rows }, (_, i) => {
    const p = i * 7;
    return `($${p + 1}::uuid, $${p + 2}::date, $${p + 3}, $${p + 4}::integer, $${p + 5}::integer, $${p + 6}::bigint, $${p + 7}::bigint)`;
  });
  return `INSERT INTO key_usage_daily (key_id, day, model, requests, cached_requests, prompt_tokens, completion_tokens)
VALUES ${values.join(', ')}
ON CONFLICT (key_id, day, model) DO UPDATE SET
  requests = key_usage_daily.requests + EXCLUDED.requests,
  cached_requests = key_usage_daily.cached_requests + EXCLUDED.cached_requests,
  prompt_tokens = key_usage_daily.prompt_tokens + EXCLUDED.prompt_tokens,
  completion_tokens = key_usage_daily.completion_tokens + EXCLUDED.completion_tokens`;
}

@Injectable()
export class UsageLedgerWriter implements OnModuleInit, OnApplicationShutdown {
  private pending = new Map<string, DailySums>();
  private timer: NodeJS.Timeout | null = null;
  /** Flushes run one after another. */
  private tail: Promise<void> = Promise.resolve();

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
    @Inject(LEDGER_FLUSH_INTERVAL_MS) private readonly intervalMs: number = DEFAULT_FLUSH_INTERVAL_MS,
  ) {}

  onModuleInit(): void {
    if (this.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  /** After the HTTP server has closed, before the database closes (see UsageLedgerModule). */
  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }

  /** Adds one generation's outcome. Synchronous: no I/O on the request path. */
  record(entry: LedgerEntry): void {
    this.merge({
      keyId: entry.keyId,
      day: entry.at.toISOString().slice(0, 10),
      model: entry.model,
      requests: 1,
      cachedRequests: entry.cached ? 1 : 0,
      promptTokens: entry.promptTokens,
      completionTokens: entry.completionTokens,
    });
  }

  /** Writes everything recorded so far. Never rejects: a failed batch is kept for the next flush. */
  flush(): Promise<void> {
    const run = this.tail.then(() => this.writePending());
    this.tail = run;
    return run;
  }

  private async writePending(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    let written = 0;
    try {
      while (written < batch.length) {
        const rows = batch.slice(written, written + ROWS_PER_STATEMENT);
        const params = rows.flatMap((r) => [
          r.keyId,
          r.day,
          r.model,
          r.requests,
          r.cachedRequests,
          r.promptTokens,
          r.completionTokens,
        ]);
        await this.db.query(upsertSql(rows.length), params);
        written += rows.length;
      }
    } catch (error) {
      const unwritten = batch.slice(written);
      for (const sums of unwritten) this.merge(sums);
      this.logger.warn(
        { err: (error as Error).message, rows: unwritten.length },
        'usage ledger: flush failed; retrying with the next flush',
      );
    }
  }

  private merge(sums: DailySums): void {
    const id = sumsId(sums.keyId, sums.day, sums.model);
    const current = this.pending.get(id);
    if (!current) {
      this.pending.set(id, sums);
      return;
    }
    current.requests += sums.requests;
    current.cachedRequests += sums.cachedRequests;
    current.promptTokens += sums.promptTokens;
    current.completionTokens += sums.completionTokens;
  }
}
