/** Wires the feature modules. Built from an already validated config (main.ts or tests). */
import { type DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ApiKeyGuard } from './http/guards/api-key.guard';
import { ListenerGuard } from './http/guards/listener.guard';
import { RateLimitGuard } from './http/guards/rate-limit.guard';
import { StoresModule } from './stores/stores.module';
import { AdminModule } from './modules/admin/admin.module';
import { AuthModule } from './modules/auth/auth.module';
import { CacheModule } from './modules/cache/cache.module';
import { CommonModule } from './infra/lifecycle/lifecycle.module';
import type { AppConfig } from './infra/config/app.config';
import { ConfigModule } from './infra/config/config.module';
import { ConsoleModule } from './modules/console/console.module';
import { DatabaseModule } from './infra/database/database.module';
import { GenerationModule } from './modules/generation/generation.module';
import { HealthModule } from './modules/health/health.module';
import { LoggingModule } from './infra/logging/logging.module';
import type { AppLogger } from './infra/logging/logger';
import { MetricsModule } from './infra/metrics/metrics.module';
import { ModelsModule } from './http/openai/models.module';
import { EmbeddingsModule } from './http/openai/embeddings.module';
import { OpenAiModule } from './http/openai/openai.module';
import { RateLimitModule } from './modules/limits/limits.module';
import { RedisModule } from './infra/redis/redis.module';
import { TracingModule } from './infra/tracing/tracing.module';
import { UsageModule } from './modules/usage/usage.module';

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
