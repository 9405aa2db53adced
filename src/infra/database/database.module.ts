/**
 * The TypeORM data source, migrated at startup (under the advisory lock) unless SKIP_MIGRATIONS,
 * and Database, the bounded statement runner every request-path query goes through.
 */
import { type DynamicModule, Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app.config';
import { dataSourceOptions } from './data-source';
import { Database } from './database.service';
import { migrateTarget } from './migrate';

@Global()
@Module({})
export class DatabaseModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          useFactory: () => ({
            ...dataSourceOptions(config.database, config.dbTimeoutMs, config.dbTimeoutMs),
            retryAttempts: 2,
            retryDelay: 1000,
          }),
          dataSourceFactory: async (options) => {
            const dataSource = await new DataSource(options!).initialize();
            if (!config.skipMigrations) await migrateTarget(config.database, dataSource, config.migrationLockTimeoutMs);
            return dataSource;
          },
        }),
      ],
      providers: [Database],
      exports: [Database],
    };
  }
}
