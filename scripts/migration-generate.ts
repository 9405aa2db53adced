/**
 * `npm run migration:generate -- <name>`: migrates a scratch in-memory database, compares it
 * with the TypeORM entities and writes the difference as a new migrations/<timestamp>-<name>.sql
 * for review (edit it by hand: the SQL is what runs, on PostgreSQL and PGlite alike).
 */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../src/infra/database/data-source';
import { runMigrations } from '../src/infra/database/migrate';
import { MIGRATIONS_DIR } from '../src/infra/database/sql-migrations';

async function main(): Promise<void> {
  const name = process.argv[2];
  if (!name || !/^[a-z0-9-]+$/.test(name)) {
    console.error('usage: npm run migration:generate -- <name-in-kebab-case>');
    process.exit(2);
  }
  const dataSource = await new DataSource(dataSourceOptions({ kind: 'pglite', dataDir: null })).initialize();
  try {
    await runMigrations(dataSource);
    const sql = await dataSource.driver.createSchemaBuilder().log();
    if (sql.upQueries.length === 0) {
      console.log('The entities match the migrations: nothing to generate.');
      return;
    }
    const statements = (queries: { query: string }[]) => queries.map((q) => `${q.query};`).join('\n');
    const file = join(MIGRATIONS_DIR, `${Date.now()}-${name}.sql`);
    writeFileSync(
      file,
      `-- Generated from the entities; review and edit before committing.\n\n-- migrate:up\n${statements(sql.upQueries)}\n\n-- migrate:down\n${statements([...sql.downQueries].reverse())}\n`,
    );
    console.log(`wrote ${file}`);
  } finally {
    await dataSource.destroy();
  }
}

main().catch((error: Error) => {
  console.error(`migration:generate failed: ${error.message}`);
  process.exit(1);
});
