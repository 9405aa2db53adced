/**
 * Runs pending migrations under a PostgreSQL advisory lock, so replicas that start at the
 * same moment apply each migration exactly once: the first takes the lock and migrates, the
 * others wait, then find nothing pending. The lock is session-level and held on the same
 * connection that runs the migrations (PGlite has only one session).
 */
import { type DataSource, MigrationExecutor, type Migration } from 'typeorm';

/** Arbitrary constant; identifies "llm-server schema migrations" among advisory locks. */
export const MIGRATION_LOCK_ID = 7_242_019_311;

export async function runMigrations(dataSource: DataSource): Promise<Migration[]> {
  const queryRunner = dataSource.createQueryRunner();
  await queryRunner.connect();
  try {
    await queryRunner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    try {
      const executor = new MigrationExecutor(dataSource, queryRunner);
      executor.transaction = 'each';
      return await executor.executePendingMigrations();
    } finally {
      await queryRunner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]);
    }
  } finally {
    await queryRunner.release();
  }
}
