/** The TypeORM data source, migrated at startup (under the advisory lock) unless SKIP_MIGRATIONS. */
import { type DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app.config';
import { dataSourceOptions } from './data-source';
import { runMigrations } from './migrate';

@Module({})
export class DatabaseModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          useFactory: () => ({ ...dataSourceOptions(config.database), retryAttempts: 2, retryDelay: 1000 }),
          dataSourceFactory: async (options) => {
            const dataSource = await new DataSource(options!).initialize();
            if (!config.skipMigrations) await runMigrations(dataSource);
            return dataSource;
          },
        }),
      ],
    };
  }
}
