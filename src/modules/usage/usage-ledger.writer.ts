/**
 * Writes the usage ledger (key_usage_daily) without a database write per request: outcomes
 * are summed in memory per (key, UTC day, model) and written by one upsert per flush, every
 * FLUSH_INTERVAL_MS, before this replica reads the ledger, and at shutdown. Each replica adds
 * its own sums, so replicas never overwrite each other.
 *
 * Nothing served is lost to a database problem: sums that could not be written (the database
 * is down) stay pending, merged with newer ones, and are written once it is back; at shutdown
 * the final flush is retried until it succeeds or the shutdown budget ends. A batch the
 * database rejects because of one bad row is split until the bad row is alone; that row is
 * quarantined (logged with its figures, dropped) and every other row is written. A crash loses
 * at most the sums of the last interval (one second).
 */
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { DatabaseRejected } from '../../infra/database/database-errors';
import { Database } from '../../infra/database/database.service';
import { APP_LOGGER, type AppLogger } from '../../infra/logging/logger';

/** How often pending sums are written, in ms (a provider, so tests can turn the timer off with 0). */
export const LEDGER_FLUSH_INTERVAL_MS = Symbol('LEDGER_FLUSH_INTERVAL_MS');
export const DEFAULT_FLUSH_INTERVAL_MS = 1000;
/** Rows per INSERT statement (7 parameters each, far below PostgreSQL's 65535). */
const ROWS_PER_STATEMENT = 500;
/** How long the final flush at shutdown keeps retrying, and its pace. */
export const FINAL_FLUSH_BUDGET_MS = 5000;
const FINAL_FLUSH_RETRY_MS = 200;

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

function upsertParams(r: DailySums): unknown[] {
  return [r.keyId, r.day, r.model, r.requests, r.cachedRequests, r.promptTokens, r.completionTokens];
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
    private readonly db: Database,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
    @Inject(LEDGER_FLUSH_INTERVAL_MS) private readonly intervalMs: number = DEFAULT_FLUSH_INTERVAL_MS,
  ) {}

  onModuleInit(): void {
    if (this.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  /** After the HTTP server has closed, before the database closes (UsageModule is not global). */
  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flushWithin(FINAL_FLUSH_BUDGET_MS);
  }

  /** Sums not written yet (rows of (key, day, model)). */
  get pendingRows(): number {
    return this.pending.size;
  }

  /** Flushes until nothing is pending or `budgetMs` has passed; logs what could not be written. */
  async flushWithin(budgetMs: number): Promise<void> {
    const giveUpAt = Date.now() + budgetMs;
    await this.flush();
    while (this.pending.size > 0 && Date.now() < giveUpAt) {
      await new Promise((resolve) => setTimeout(resolve, FINAL_FLUSH_RETRY_MS));
      await this.flush();
    }
    if (this.pending.size > 0) {
      this.logger.error(
        { rows: [...this.pending.values()] },
        'usage ledger: the final flush failed; these sums are not written',
      );
    }
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
    for (let at = 0; at < batch.length; at += ROWS_PER_STATEMENT) {
      await this.writeRows(batch.slice(at, at + ROWS_PER_STATEMENT));
    }
  }

  /** Writes rows; a rejected batch is halved until the bad row is alone; unwritten rows go back to pending. */
  private async writeRows(rows: DailySums[]): Promise<void> {
    try {
      await this.db.query(upsertSql(rows.length), rows.flatMap(upsertParams));
    } catch (error) {
      if (!(error instanceof DatabaseRejected)) {
        for (const sums of rows) this.merge(sums);
        this.logger.warn(
          { err: (error as Error).message, rows: rows.length },
          'usage ledger: flush failed; retrying with the next flush',
        );
        return;
      }
      if (rows.length === 1) {
        this.logger.error({ row: rows[0] }, 'usage ledger: the database rejected this row; quarantined (dropped)');
        return;
      }
      const half = Math.ceil(rows.length / 2);
      await this.writeRows(rows.slice(0, half));
      await this.writeRows(rows.slice(half));
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
