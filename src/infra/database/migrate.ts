/**
 * Runs pending migrations under a PostgreSQL advisory lock, so replicas that start at the
 * same moment apply each migration exactly once: the first takes the lock and migrates, the
 * others wait, then find nothing pending. The lock is session-level and held on the same
 * connection that runs the migrations (PGlite has only one session). Waiting is bounded: a
 * lock held for longer than `lockTimeoutMs` (a stuck migration, a crashed process whose session
 * lingers) fails the startup with an error that says who holds it.
 *
 * A session-level lock and `SET statement_timeout` need a session of their own, which a
 * transaction-pooling PgBouncer does not keep: with DATABASE_MIGRATION_URL the migrations run on
 * a direct connection opened for them alone (migrateTarget), then closed.
 */
import { DataSource, type DataSourceOptions, MigrationExecutor, type Migration, type QueryRunner } from 'typeorm';
import type { DatabaseTarget } from '../config/app.config';
import { dataSourceOptions } from './data-source';

/** Arbitrary constant; identifies "llm-server schema migrations" among advisory locks. */
export const MIGRATION_LOCK_ID = 7_242_019_311;
const LOCK_POLL_MS = 250;

export class MigrationLockTimeout extends Error {
  override readonly name = 'MigrationLockTimeout';
}

async function takeLock(queryRunner: QueryRunner, timeoutMs: number): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    const [row] = (await queryRunner.query('SELECT pg_try_advisory_lock($1) AS locked', [MIGRATION_LOCK_ID])) as {
      locked: boolean;
    }[];
    if (row.locked) return;
    if (Date.now() >= giveUpAt) {
      const holders = (await queryRunner.query(
        `SELECT l.pid, a.application_name FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND (l.classid::bigint << 32 | l.objid::bigint) = $1`,
        [MIGRATION_LOCK_ID],
      )) as { pid: number; application_name: string | null }[];
      const who = holders.map((h) => `pid ${h.pid}${h.application_name ? ` (${h.application_name})` : ''}`).join(', ');
      throw new MigrationLockTimeout(
        `could not take the migration lock within ${timeoutMs} ms: held by ${who || 'another session'}; ` +
          'another replica may be migrating, or a stuck session holds it (pg_terminate_backend ends it)',
      );
    }
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
}

export async function runMigrations(dataSource: DataSource, lockTimeoutMs = 60_000): Promise<Migration[]> {
  const queryRunner = dataSource.createQueryRunner();
  await queryRunner.connect();
  try {
    // A migration may take longer than a request's statement bound (an index on a big table).
    await queryRunner.query('SET statement_timeout = 0');
    await takeLock(queryRunner, lockTimeoutMs);
    try {
      const executor = new MigrationExecutor(dataSource, queryRunner);
      executor.transaction = 'each';
      return await executor.executePendingMigrations();
    } finally {
      await queryRunner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]);
    }
  } finally {
    // Back to the connection's own bound before the pool hands it to the request path.
    await queryRunner.query('RESET statement_timeout').catch(() => undefined);
    await queryRunner.release();
  }
}

/**
 * Migrates `target`: on `dataSource` itself, or, when the target names a migration URL (the
 * request path goes through a transaction pool), on a direct connection to that URL.
 */
export async function migrateTarget(
  target: DatabaseTarget,
  dataSource: DataSource,
  lockTimeoutMs?: number,
): Promise<Migration[]> {
  if (target.kind !== 'postgres' || !target.migrationUrl) return runMigrations(dataSource, lockTimeoutMs);
  const options = dataSourceOptions({ kind: 'postgres', url: target.migrationUrl, schema: target.schema });
  const direct = await new DataSource({
    ...options,
    applicationName: 'llm-server migrations',
  } as DataSourceOptions).initialize();
  try {
    return await runMigrations(direct, lockTimeoutMs);
  } finally {
    await direct.destroy();
  }
}
