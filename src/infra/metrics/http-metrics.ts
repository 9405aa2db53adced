/**
 * The HTTP metrics of API.md: `http_requests_total` and `http_request_duration_seconds`
 * (method, route template, status code) and `llm_gateway_overhead_seconds` (route), observed by
 * the HTTP layer's middleware when each response ends (http/middleware/http-metrics.middleware.ts).
 */
import { Inject, Injectable } from '@nestjs/common';
import { Counter, Histogram, type Registry } from 'prom-client';
import { HTTP_DURATION_BUCKETS, METRICS, OVERHEAD_BUCKETS } from './metric-names';
import { METRICS_REGISTRY } from './metrics.registry';

type HttpLabels = 'method' | 'route' | 'status_code';

@Injectable()
export class HttpMetrics {
  readonly requests: Counter<HttpLabels>;
  readonly duration: Histogram<HttpLabels>;
  readonly overhead: Histogram<'route'>;

  constructor(@Inject(METRICS_REGISTRY) registry: Registry) {
    const { httpRequests, httpDuration } = METRICS;
    this.requests = new Counter<HttpLabels>({
      name: httpRequests.name,
      help: httpRequests.help,
      labelNames: httpRequests.labels,
      registers: [registry],
    });
    this.duration = new Histogram<HttpLabels>({
      name: httpDuration.name,
      help: httpDuration.help,
      labelNames: httpDuration.labels,
      buckets: HTTP_DURATION_BUCKETS,
      registers: [registry],
    });
    const { gatewayOverhead } = METRICS;
    this.overhead = new Histogram<'route'>({
      name: gatewayOverhead.name,
      help: gatewayOverhead.help,
      labelNames: gatewayOverhead.labels,
      buckets: OVERHEAD_BUCKETS,
      registers: [registry],
    });
  }
}
