/**
 * TypeORM data source options: PostgreSQL when DATABASE_URL is set, embedded PGlite otherwise.
 * Both run the same SQL migrations; the schema is never synchronised from entities.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DataSourceOptions } from 'typeorm';
import type { DatabaseTarget } from '../config/app.config';
import { ApiKeyEntity } from './entities/api-key.entity';
import { pgliteDriver } from './pglite-pool';
import { sqlMigrations } from './sql-migrations';

export const ENTITIES = [ApiKeyEntity];

/**
 * `connectTimeoutMs` bounds getting a pooled connection (waiting for a free one, or connecting):
 * the request path's DB_TIMEOUT_MS; statements are bounded per call (database.service.ts).
 */
export function dataSourceOptions(target: DatabaseTarget, connectTimeoutMs = 10_000): DataSourceOptions {
  const common = {
    type: 'postgres' as const,
    entities: ENTITIES,
    migrations: sqlMigrations(),
    migrationsTableName: 'schema_migrations',
    synchronize: false,
    migrationsRun: false,
    installExtensions: false,
    logging: false,
  };
  if (target.kind === 'postgres') {
    return {
      ...common,
      url: target.url,
      schema: target.schema,
      poolSize: 10,
      connectTimeoutMS: connectTimeoutMs,
      // An isolated schema (tests) must also be where unqualified names resolve.
      extra: { keepAlive: true, ...(target.schema ? { options: `-c search_path=${target.schema}` } : {}) },
      applicationName: 'llm-server',
    };
  }
  if (target.dataDir) mkdirSync(dirname(target.dataDir), { recursive: true });
  return {
    ...common,
    driver: pgliteDriver({ dataDir: target.dataDir ?? undefined, loadDataDir: target.initialDump }),
  };
}
