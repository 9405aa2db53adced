/**
 * `npm run migration:run`: applies pending migrations to the configured database (DATABASE_URL,
 * else the embedded PGlite in DATA_DIR) under the same advisory lock the server uses.
 */
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { loadConfig } from '../src/config/app.config';
import { dataSourceOptions } from '../src/database/data-source';
import { runMigrations } from '../src/database/migrate';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const dataSource = await new DataSource(dataSourceOptions(config.database)).initialize();
  try {
    const applied = await runMigrations(dataSource);
    console.log(applied.length ? `applied: ${applied.map((m) => m.name).join(', ')}` : 'no pending migrations');
  } finally {
    await dataSource.destroy();
  }
}

main().catch((error: Error) => {
  console.error(`migration:run failed: ${error.message}`);
  process.exit(1);
});
