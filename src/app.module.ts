/**
 * The application: the infrastructure (the only global modules), the HTTP layer with the
 * features it calls, and the order of the global request checks. Built from an already
 * validated config (main.ts or tests). The middleware order is in http/server/http-app.ts.
 */
import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR, APP_PIPE } from '@nestjs/core';
import { BodyErrorInterceptor } from './http/errors/body-error.interceptor';
import { HttpExceptionFilter } from './http/errors/http-exception.filter';
import { StrictValidationPipe } from './http/errors/validation.pipe';
import { ApiKeyGuard } from './http/guards/api-key.guard';
import { ListenerGuard } from './http/guards/listener.guard';
import { RateLimitGuard } from './http/guards/rate-limit.guard';
import { HttpModule } from './http/server/http.module';
import type { AppConfig } from './infra/config/app.config';
import { ConfigModule } from './infra/config/config.module';
import { DatabaseModule } from './infra/database/database.module';
import { LifecycleModule } from './infra/lifecycle/lifecycle.module';
import type { AppLogger } from './infra/logging/logger';
import { LoggingModule } from './infra/logging/logging.module';
import { MetricsModule } from './infra/metrics/metrics.module';
import { RedisModule } from './infra/redis/redis.module';
import { TracingModule } from './infra/tracing/tracing.module';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig, logger: AppLogger): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggingModule.forRoot(logger),
        LifecycleModule,
        MetricsModule.forRoot(),
        TracingModule,
        DatabaseModule.forRoot(config),
        RedisModule,
        HttpModule.forRoot(),
      ],
      providers: [
        // The global request checks, in the order they run: the listener a route belongs to (404
        // on the other one), the client key (401), its rate limit (429); then a body that could
        // not be read (415/413/400), then validation (400); errors of all of them leave through
        // the one filter.
        { provide: APP_GUARD, useClass: ListenerGuard },
        { provide: APP_GUARD, useClass: ApiKeyGuard },
        { provide: APP_GUARD, useClass: RateLimitGuard },
        { provide: APP_INTERCEPTOR, useClass: BodyErrorInterceptor },
        { provide: APP_PIPE, useClass: StrictValidationPipe },
        { provide: APP_FILTER, useClass: HttpExceptionFilter },
      ],
    };
  }
}
