/**
 * Stored /v1/responses results (API.md "Compatible APIs", CONFIG.md RESPONSES_STORE_DAYS): rows
 * of `stored_responses`, each visible only to the key that created it (by key id, so a rotated
 * key keeps access; any other key sees nothing, as if it did not exist) and only until it
 * expires. A sweep deletes expired rows once at startup and then daily; reads ignore them
 * meanwhile, so the sweep's timing never decides what a client sees.
 */
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Clock } from '../../contracts/clock';
import type { ChatMessage } from '../../contracts/generation';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import { Database } from '../../infra/database/database.service';

const DAY_MS = 86_400_000;

export interface StoredResponse {
  /** The response object as it was answered. */
  response: Record<string, unknown>;
  /** The conversation it ends: its input (with the history it continued) and its output. */
  conversation: ChatMessage[];
}

@Injectable()
export class ResponseStore implements OnModuleInit, OnApplicationShutdown {
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly db: Database,
    private readonly clock: Clock,
  ) {}

  /** false with RESPONSES_STORE_DAYS=0: nothing is stored and nothing can be continued. */
  get enabled(): boolean {
    return this.config.responsesStoreDays > 0;
  }

  onModuleInit(): void {
    void this.sweep();
    this.sweepTimer = setInterval(() => void this.sweep(), DAY_MS);
    this.sweepTimer.unref();
  }

  onApplicationShutdown(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }

  async save(id: string, keyId: string, stored: StoredResponse): Promise<void> {
    const now = this.clock.now();
    const expires = new Date(now.getTime() + this.config.responsesStoreDays * DAY_MS);
    await this.db.query(
      `INSERT INTO stored_responses (id, key_id, created_at, expires_at, response, conversation)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [id, keyId, now, expires, JSON.stringify(stored.response), JSON.stringify(stored.conversation)],
    );
  }

  /** The key's unexpired response `id`, or null (unknown, another key's, or expired). */
  async find(id: string, keyId: string): Promise<StoredResponse | null> {
    const { rows } = await this.db.query<StoredResponse>(
      'SELECT response, conversation FROM stored_responses WHERE id = $1 AND key_id = $2 AND expires_at > $3',
      [id, keyId, this.clock.now()],
    );
    return rows[0] ?? null;
  }

  /** Deletes the key's response `id`; false when there was none to delete (for this key). */
  async remove(id: string, keyId: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      'DELETE FROM stored_responses WHERE id = $1 AND key_id = $2 AND expires_at > $3',
      [id, keyId, this.clock.now()],
    );
    return rowCount > 0;
  }

  /** Deletes every expired row; the number deleted. A failure waits for the next sweep. */
  async sweep(): Promise<number> {
    try {
      const { rowCount } = await this.db.query(
        'DELETE FROM stored_responses WHERE expires_at <= $1',
        [this.clock.now()],
        {
          background: true,
        },
      );
      return rowCount;
    } catch {
      return 0;
    }
  }
}
