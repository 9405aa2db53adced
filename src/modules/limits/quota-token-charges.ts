/**
 * Token charges of keys with a token quota, batched: a key with a quota costs one statement per
 * request. A charge waits CHARGE_FLUSH_MS for the key's next reservation to carry it in its own
 * statement (QuotaService.reserve takes it with take()); if none comes, one UPDATE writes all of
 * the key's charges. Charges that could not be written (database down) are kept and written when
 * it is back, and at shutdown (flush()). A charge applies to the period its unit was reserved
 * in, never to a later one.
 */
import { Inject, Injectable } from '@nestjs/common';
import { DatabaseRejected } from '../../infra/database/database-errors';
import { Database } from '../../infra/database/database.service';
import { APP_LOGGER, type AppLogger } from '../../infra/logging/logger';

const CHARGE_TOKENS_SQL = `
UPDATE api_keys SET quota_tokens_used = quota_tokens_used + $3
WHERE id = $1 AND quota_reset_at = $2::timestamptz`;

/** Retry pace of token charges that could not be written. */
const CHARGE_RETRY_MS = 1000;
/**
 * How long a token charge waits for the key's next reservation to carry it before it is written
 * by itself: the delay other replicas may see a charge late (the token quota is checked before a
 * generation and charged after it anyway).
 */
const CHARGE_FLUSH_MS = 100;

interface PendingCharge {
  keyId: string;
  /** The period's end (ISO 8601): its identity. */
  resetAt: string;
  tokens: number;
}

@Injectable()
export class QuotaTokenCharges {
  private pending = new Map<string, PendingCharge>();
  private flushTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Database,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
  ) {}

  /** Queues a charge, written with the key's next reservation or within CHARGE_FLUSH_MS. */
  add(keyId: string, resetAt: string, tokens: number): void {
    if (tokens <= 0) return;
    this.addPending(keyId, resetAt, tokens);
    this.scheduleFlush(CHARGE_FLUSH_MS);
  }

  /** Takes the key's unwritten charges of the period, for a reservation to carry; put them back if it fails. */
  take(keyId: string, resetAt: string): number {
    const id = `${keyId}|${resetAt}`;
    const tokens = this.pending.get(id)?.tokens ?? 0;
    this.pending.delete(id);
    return tokens;
  }

  /** Writes every queued charge (reads of the counters and shutdown call this first). */
  flush(): Promise<void> {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  private addPending(keyId: string, resetAt: string, tokens: number): void {
    const id = `${keyId}|${resetAt}`;
    const entry = this.pending.get(id);
    if (entry) entry.tokens += tokens;
    else this.pending.set(id, { keyId, resetAt, tokens });
  }

  private scheduleFlush(delayMs: number): void {
    if (this.flushTimer) return;
    const run = () => {
      this.flushTimer = null;
      void this.flush();
    };
    this.flushTimer = setTimeout(run, delayMs).unref();
  }

  private async write(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    await Promise.all(
      batch.map(async (charge) => {
        try {
          await this.db.query(CHARGE_TOKENS_SQL, [charge.keyId, charge.resetAt, charge.tokens]);
        } catch (error) {
          if (error instanceof DatabaseRejected) {
            this.logger.error({ key_id: charge.keyId, tokens: charge.tokens }, 'quota: token charge rejected; dropped');
            return;
          }
          this.addPending(charge.keyId, charge.resetAt, charge.tokens);
          this.scheduleFlush(CHARGE_RETRY_MS);
        }
      }),
    );
  }
}
