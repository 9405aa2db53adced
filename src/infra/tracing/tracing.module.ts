/**
 * OpenTelemetry tracing (infrastructure, so global): provides `Tracing` — OtelTracing when
 * AppConfig.tracing is set, else NoopTracing — and flushes pending spans when the application
 * shuts down. The SDK is required here only when tracing is on: off, not one OpenTelemetry
 * module is loaded. The server span of each request is opened by the HTTP layer's middleware
 * (http/middleware/tracing.middleware.ts).
 */
import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { AppConfig } from '../config/app.config';
import { APP_CONFIG } from '../config/config.module';
import { APP_LOGGER, type AppLogger } from '../logging/logger';
import type * as Otel from './otel-tracing';
import { NoopTracing, Tracing } from './tracing';

function createTracing(config: AppConfig, logger: AppLogger): Tracing {
  if (!config.tracing) return new NoopTracing();
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the SDK loads only when tracing is on
  const { OtelTracing } = require('./otel-tracing') as typeof Otel;
  logger.info(
    {
      protocol: config.tracing.protocol,
      sampler: config.tracing.sampler,
      service_name: config.tracing.serviceName,
      record_content: config.tracing.recordContent,
    },
    'tracing on: exporting spans over OTLP',
  );
  return new OtelTracing(config.tracing, logger);
}

@Global()
@Module({
  providers: [{ provide: Tracing, useFactory: createTracing, inject: [APP_CONFIG, APP_LOGGER] }],
  exports: [Tracing],
})
export class TracingModule implements OnApplicationShutdown {
  constructor(@Inject(Tracing) private readonly tracing: Tracing) {}

  async onApplicationShutdown(): Promise<void> {
    await this.tracing.shutdown();
  }
}
