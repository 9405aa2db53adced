/** Wires the feature modules. Built from an already validated config (main.ts or tests). */
import { type DynamicModule, Module } from '@nestjs/common';
import { AdminModule } from './admin/admin.module';
import { AuthModule } from './auth/auth.module';
import { CacheModule } from './cache/cache.module';
import { CommonModule } from './common/common.module';
import type { AppConfig } from './config/app.config';
import { ConfigModule } from './config/config.module';
import { ConsoleModule } from './console/console.module';
import { DatabaseModule } from './database/database.module';
import { GenerationModule } from './generation/generation.module';
import { HealthModule } from './health/health.module';
import { LoggingModule } from './logging/logging.module';
import type { AppLogger } from './logging/logger';
import { MetricsModule } from './metrics/metrics.module';
import { ModelsModule } from './models/models.module';
import { OpenAiModule } from './openai/openai.module';
import { QuotaModule } from './quota/quota.module';
import { RateLimitModule } from './rate-limit/rate-limit.module';
import { RedisModule } from './redis/redis.module';
import { UsageModule } from './usage/usage.module';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig, logger: AppLogger): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggingModule.forRoot(logger),
        CommonModule,
        MetricsModule.forRoot(),
        RedisModule,
        DatabaseModule.forRoot(config),
        AuthModule,
        // After AuthModule: its guard (401) must run before the rate-limit guard (429).
        RateLimitModule,
        QuotaModule,
        UsageModule,
        AdminModule,
        ConsoleModule,
        ModelsModule,
        CacheModule,
        GenerationModule,
        OpenAiModule,
        HealthModule,
      ],
    };
  }
}
