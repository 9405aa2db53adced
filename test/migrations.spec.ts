/**
 * The SQL migrations apply on an empty PGlite and an empty PostgreSQL, are recorded once, can
 * be reverted, and two runners starting at the same moment do not collide (advisory lock).
 */
import { randomBytes } from 'node:crypto';
import { DataSource, MigrationExecutor } from 'typeorm';
import { dataSourceOptions } from '../src/infra/database/data-source';
import { MIGRATION_LOCK_ID, runMigrations } from '../src/infra/database/migrate';
import { parseMigrationFile, readMigrationFiles } from '../src/infra/database/sql-migrations';
import { dropSchema } from './harness/app';
import { SERVICES_DATABASE_URL, SERVICES_MIGRATION_URL } from './harness/environment';

const EXPECTED_TABLES = ['api_keys', 'key_usage_daily', 'teams', 'team_usage_daily', 'budget_reservations'];

async function tables(dataSource: DataSource): Promise<string[]> {
  const rows: { table_name: string }[] = await dataSource.query(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`,
  );
  return rows.map((row) => row.table_name);
}

describe('migration files', () => {
  it('every file parses and has an up and a down section', () => {
    const files = readMigrationFiles();
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      expect(file.up.length).toBeGreaterThan(0);
      expect(file.down.length).toBeGreaterThan(0);
      expect(file.className).toMatch(/\d{13}$/);
    }
  });

  it('rejects badly named or sectioned files', () => {
    expect(() => parseMigrationFile('init.sql', '-- migrate:up\n-- migrate:down\n')).toThrow(/named/);
    expect(() => parseMigrationFile('1764000000000-x.sql', 'CREATE TABLE t ();')).toThrow(/migrate:up/);
  });
});

describe('on PGlite (embedded)', () => {
  let dataSource: DataSource;
  beforeAll(async () => {
    dataSource = await new DataSource(dataSourceOptions({ kind: 'pglite', dataDir: null })).initialize();
  });
  afterAll(() => dataSource.destroy());

  it('applies every migration to an empty database, once', async () => {
    const applied = await runMigrations(dataSource);
    expect(applied.map((m) => m.name)).toEqual(readMigrationFiles().map((f) => f.className));
    expect(await tables(dataSource)).toEqual(expect.arrayContaining(EXPECTED_TABLES));
    expect(await runMigrations(dataSource)).toEqual([]);
  });

  it('reverts with the down sections', async () => {
    const queryRunner = dataSource.createQueryRunner();
    const executor = new MigrationExecutor(dataSource, queryRunner);
    for (let i = 0; i < readMigrationFiles().length; i += 1) await executor.undoLastMigration();
    await queryRunner.release();
    expect(await tables(dataSource)).not.toEqual(expect.arrayContaining(['api_keys']));
    expect((await runMigrations(dataSource)).length).toBe(readMigrationFiles().length);
  });
});

(SERVICES_DATABASE_URL ? describe : describe.skip)('on PostgreSQL [needs DATABASE_URL: npm run test:services]', () => {
  const schema = `test_migrate_${randomBytes(4).toString('hex')}`;
  // Migrations and their session-level lock run on a direct connection (DATABASE_MIGRATION_URL
  // when the suite's DATABASE_URL goes through PgBouncer).
  const url = SERVICES_MIGRATION_URL ?? SERVICES_DATABASE_URL ?? '';
  const sources: DataSource[] = [];

  beforeAll(async () => {
    const admin = await new DataSource({ type: 'postgres', url }).initialize();
    await admin.query(`CREATE SCHEMA "${schema}"`);
    await admin.destroy();
    for (let i = 0; i < 3; i += 1) {
      sources.push(await new DataSource(dataSourceOptions({ kind: 'postgres', url, schema })).initialize());
    }
  });
  afterAll(async () => {
    await Promise.all(sources.map((source) => source.destroy()));
    await dropSchema(url, schema);
  });

  it('three runners starting at once apply each migration exactly once', async () => {
    const results = await Promise.all(sources.map((source) => runMigrations(source)));
    const appliedCounts = results.map((applied) => applied.length).sort();
    expect(appliedCounts).toEqual([0, 0, readMigrationFiles().length]);
    const recorded: { name: string }[] = await sources[0].query(`SELECT name FROM "${schema}".schema_migrations`);
    expect(recorded.map((row) => row.name).sort()).toEqual(
      readMigrationFiles()
        .map((f) => f.className)
        .sort(),
    );
    expect(await tables(sources[0])).toEqual(expect.arrayContaining(EXPECTED_TABLES));
  });

  it('a lock held by another session is waited for within the bound, then a clear error naming its holder', async () => {
    const holder = await sources[1].createQueryRunner();
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
      const started = Date.now();
      await expect(runMigrations(sources[0], 600)).rejects.toThrow(
        /could not take the migration lock within 600 ms: held by pid \d+/,
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(550);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await holder.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]);
      await holder.release();
    }
    // Once it is free, migrating works (nothing pending here).
    expect(await runMigrations(sources[0], 600)).toEqual([]);
  });
});
