/**
 * The database as the request path uses it: parameterised statements on the data source's own
 * pool, each bounded by DB_TIMEOUT_MS (pool wait and connect by the pool's connection timeout,
 * the statement by a client-side read timeout; a connection that timed out is discarded, not
 * reused). An outage marks the database down (see DependencyHealth): until a background probe
 * answers, calls fail at once with DependencyDown, which clients see as 503
 * service_unavailable. A statement rejected because of a value in it throws DatabaseRejected
 * (400 to clients).
 *
 * Through a transaction-pooling PgBouncer (DATABASE_MIGRATION_URL set) a connection cannot carry
 * the server-side `statement_timeout` (data-source.ts), and a statement the client gave up on
 * would run on, and commit, behind PgBouncer (a quota charged for a 503). There each statement
 * runs in a transaction of its own that sets it first (`SET LOCAL`: nothing outlives the
 * transaction, so no session state reaches the next client of that server connection): two
 * round trips more per statement, the price of the bound.
 */
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { DependencyHealth } from '../lifecycle/dependency-health';
import type { AppConfig } from '../config/app.config';
import { APP_CONFIG } from '../config/config.module';
import { APP_LOGGER, type AppLogger } from '../logging/logger';
import { classifyDatabaseFailure, DatabaseRejected, isBadInput } from './database-errors';

const PROBE_INTERVAL_MS = 1000;
/** Statement timeouts in a row after which the database counts as down. */
const TIMEOUTS_TO_DOWN = 3;

export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

/** What the request path needs of a node-postgres-shaped pool (pg.Pool, or the PGlite pool). */
interface QueryConfig {
  text: string;
  values?: unknown[];
  query_timeout?: number;
}

export interface QueryablePool {
  query(config: QueryConfig): Promise<QueryResult<unknown>>;
  /** pg.Pool's: one connection for several statements (the pooled path's transaction). */
  connect?(): Promise<{
    query(config: QueryConfig): Promise<QueryResult<unknown>>;
    release(destroy?: boolean): void;
    on(event: 'error', listener: (error: Error) => void): unknown;
    off(event: 'error', listener: (error: Error) => void): unknown;
  }>;
}

@Injectable()
export class Database implements OnApplicationShutdown {
  readonly health: DependencyHealth;
  private readonly timeoutMs: number;
  /** DATABASE_URL goes through a transaction pool: each statement bounds itself (see above). */
  private readonly pooled: boolean;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(APP_LOGGER) logger: AppLogger,
  ) {
    this.timeoutMs = config.dbTimeoutMs;
    this.pooled = config.database?.kind === 'postgres' && Boolean(config.database.migrationUrl);
    this.health = new DependencyHealth('database', {
      probe: async () => void (await this.run('SELECT 1', [])),
      classify: classifyDatabaseFailure,
      // One slow statement (a row-lock wait on a hot key) is that statement's failure.
      timeoutsToDown: TIMEOUTS_TO_DOWN,
      probeIntervalMs: PROBE_INTERVAL_MS,
      onChange: (up, cause) => {
        if (up) logger.info('database is back');
        else logger.warn({ err: (cause as Error)?.message }, 'database is unavailable: requests that need it get 503');
      },
    });
  }

  onApplicationShutdown(): void {
    this.health.close();
  }

  /**
   * Rows of one statement; DependencyDown when the database is unavailable, 400 for bad input.
   * `background`: a retried write nobody waits for; its timeouts do not count toward "down".
   */
  async query<T>(text: string, values: unknown[] = [], { background = false } = {}): Promise<QueryResult<T>> {
    try {
      return await this.health.call(() => this.run<T>(text, values), { timeoutsCount: !background });
    } catch (error) {
      if (isBadInput(error)) throw new DatabaseRejected({ cause: error });
      throw error;
    }
  }

  /** One statement without the health gate (probes). */
  async run<T>(text: string, values: unknown[]): Promise<QueryResult<T>> {
    const pool = (this.dataSource.driver as unknown as { master?: QueryablePool }).master;
    // A pool already closed (shutdown under way) is an outage like a refused connection, not a bug.
    if (!this.dataSource.isInitialized || !pool) throw new Error('the database connection pool is closed');
    if (this.pooled && pool.connect) return this.runInTransaction<T>(pool.connect.bind(pool), text, values);
    return (await pool.query({ text, values, query_timeout: this.timeoutMs })) as QueryResult<T>;
  }

  private async runInTransaction<T>(
    connect: NonNullable<QueryablePool['connect']>,
    text: string,
    values: unknown[],
  ): Promise<QueryResult<T>> {
    const client = await connect();
    const bound = { query_timeout: this.timeoutMs };
    let failed = false;
    // A connection lost while checked out emits 'error' (pg.Pool listens only to idle ones): the
    // statement under way fails with it; unheard, it would end the process.
    const lost = () => void (failed = true);
    client.on('error', lost);
    try {
      await client.query({ text: `BEGIN; SET LOCAL statement_timeout = ${this.timeoutMs}`, ...bound });
      const result = (await client.query({ text, values, ...bound })) as QueryResult<T>;
      await client.query({ text: 'COMMIT', ...bound });
      return result;
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      // A failed one is closed, not rolled back: PgBouncer then rolls its server connection back.
      client.off('error', lost);
      client.release(failed);
    }
  }
}
