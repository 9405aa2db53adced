/** Wires the feature modules. Built from an already validated config (main.ts or tests). */
import { type DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ApiKeyGuard } from './auth/api-key.guard';
import { ListenerGuard } from './common/listener';
import { RateLimitGuard } from './rate-limit/rate-limit.guard';
import { StoresModule } from './stores/stores.module';
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
import { EmbeddingsModule } from './embeddings/embeddings.module';
import { OpenAiModule } from './openai/openai.module';
import { RateLimitModule } from './rate-limit/rate-limit.module';
import { RedisModule } from './redis/redis.module';
import { TracingModule } from './tracing/tracing.module';
import { UsageModule } from './usage/usage.module';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig, logger: AppLogger): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggingModule.forRoot(logger),
        TracingModule,
        CommonModule,
        MetricsModule.forRoot(),
        RedisModule,
        StoresModule,
        DatabaseModule.forRoot(config),
        AuthModule,
        RateLimitModule,
        UsageModule,
        AdminModule,
        ConsoleModule,
        ModelsModule,
        CacheModule,
        GenerationModule,
        OpenAiModule,
        EmbeddingsModule,
        HealthModule,
      ],
      // Global guards, in the order they run: the listener a route belongs to (404 on the other
      // one), then the client key (401), then its rate limit (429). Pipes (400) come after.
      providers: [
        { provide: APP_GUARD, useClass: ListenerGuard },
        { provide: APP_GUARD, useClass: ApiKeyGuard },
        { provide: APP_GUARD, useClass: RateLimitGuard },
      ],
    };
  }
}
