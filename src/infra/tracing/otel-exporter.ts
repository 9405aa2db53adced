/**
 * The OTLP span exporter of the configured protocol, every setting passed explicitly from
 * TracingConfig. Only the package of that protocol is loaded. Failed exports are logged (at most
 * once a minute, without the headers, which may hold a collector's API key): the SDK itself
 * would drop them silently.
 */
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import type { TracingConfig } from '../config/tracing.config';
import type { AppLogger } from '../logging/logger';

const FAILURE_LOG_INTERVAL_MS = 60_000;

/* eslint-disable @typescript-eslint/no-require-imports -- one exporter package per protocol, loaded on demand */
function otlpExporter(config: TracingConfig): SpanExporter {
  const common = { url: config.endpoint, timeoutMillis: config.timeoutMs };
  switch (config.protocol) {
    case 'http/protobuf': {
      const { OTLPTraceExporter } =
        require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto');
      return new OTLPTraceExporter({ ...common, headers: config.headers });
    }
    case 'http/json': {
      const { OTLPTraceExporter } =
        require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
      return new OTLPTraceExporter({ ...common, headers: config.headers });
    }
    case 'grpc': {
      const { OTLPTraceExporter } =
        require('@opentelemetry/exporter-trace-otlp-grpc') as typeof import('@opentelemetry/exporter-trace-otlp-grpc');
      const { Metadata } = require('@grpc/grpc-js') as typeof import('@grpc/grpc-js');
      const metadata = new Metadata();
      for (const [key, value] of Object.entries(config.headers)) metadata.set(key, value);
      return new OTLPTraceExporter({ ...common, metadata });
    }
  }
}
/* eslint-enable @typescript-eslint/no-require-imports */

/** Wraps an exporter so that failed exports reach the log. */
class LoggingExporter implements SpanExporter {
  private lastFailureLog = 0;
  private failedSinceLog = 0;

  constructor(
    private readonly inner: SpanExporter,
    private readonly config: TracingConfig,
    private readonly logger: AppLogger,
  ) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) this.failed(spans.length, result.error);
      resultCallback(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }

  private failed(count: number, error: Error | undefined): void {
    this.failedSinceLog += count;
    const now = Date.now();
    if (now - this.lastFailureLog < FAILURE_LOG_INTERVAL_MS) return;
    this.logger.warn(
      {
        spans_dropped: this.failedSinceLog,
        protocol: this.config.protocol,
        error: error?.message ?? 'unknown error',
      },
      'trace export failed',
    );
    this.lastFailureLog = now;
    this.failedSinceLog = 0;
  }
}

export function createSpanExporter(config: TracingConfig, logger: AppLogger): SpanExporter {
  return new LoggingExporter(otlpExporter(config), config, logger);
}
