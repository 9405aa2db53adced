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
 * the request path's DB_TIMEOUT_MS. `statementTimeoutMs` has PostgreSQL itself cancel a statement
 * that runs longer (its `statement_timeout`): the client-side bound of each call
 * (database.service.ts) alone would leave the statement running, and committing, after the
 * caller gave up on it. Migrations lift it for their own session (migrate.ts).
 *
 * Through a transaction-pooling PgBouncer (DATABASE_MIGRATION_URL set: `pooled`) a connection
 * carries no session state: no startup parameters (PgBouncer refuses those it does not track,
 * and a server connection is shared by every client anyway), so the server-side bound is
 * PgBouncer's `query_timeout` or the role's own `statement_timeout` (README "Scaling out"); the
 * client-side bound still holds. node-postgres sends unnamed statements only, which such a pool
 * allows.
 */
export function dataSourceOptions(
  target: DatabaseTarget,
  connectTimeoutMs = 10_000,
  statementTimeoutMs: number | null = null,
): DataSourceOptions {
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
    const pooled = Boolean(target.migrationUrl);
    return {
      ...common,
      url: target.url,
      schema: target.schema,
      poolSize: 10,
      connectTimeoutMS: connectTimeoutMs,
      // An isolated schema (tests) must also be where unqualified names resolve.
      extra: {
        keepAlive: true,
        ...(statementTimeoutMs !== null && !pooled ? { statement_timeout: statementTimeoutMs } : {}),
        ...(target.schema && !pooled ? { options: `-c search_path=${target.schema}` } : {}),
      },
      applicationName: 'llm-server',
    };
  }
  if (target.dataDir) mkdirSync(dirname(target.dataDir), { recursive: true });
  return {
    ...common,
    driver: pgliteDriver({ dataDir: target.dataDir ?? undefined, template: target.template }),
  };
}
