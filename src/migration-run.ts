/**
 * `npm run migration:run` (and `make migrate` in the image: `node dist/migration-run.js`): applies
 * pending migrations to the configured database (DATABASE_URL, else the embedded PGlite in
 * DATA_DIR; DATABASE_MIGRATION_URL when set) under the same advisory lock the server uses. Compiled with the server, so it runs the
 * image's own code and starts without a TypeScript loader.
 */
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { loadConfig } from './infra/config/app.config';
import { dataSourceOptions } from './infra/database/data-source';
import { migrateTarget } from './infra/database/migrate';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const dataSource = await new DataSource(dataSourceOptions(config.database)).initialize();
  try {
    const applied = await migrateTarget(config.database, dataSource);
    process.stdout.write(
      applied.length ? `applied: ${applied.map((m) => m.name).join(', ')}\n` : 'no pending migrations\n',
    );
  } finally {
    await dataSource.destroy();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`migration:run failed: ${error.message}\n`);
  process.exit(1);
});
