/**
 * GET /metrics: this app's registry in the Prometheus text format. Public to the API-key
 * guard; METRICS_TOKEN protects it when set. Registered through PrometheusModule (which sets
 * its path), but it serves our per-app registry, not prom-client's global one; with WORKERS > 1,
 * every worker's merged (infra/metrics/cluster-metrics.ts).
 */
import { Controller, Get, Inject, Res, UseGuards } from '@nestjs/common';
import type { Response } from 'express';
import type { Registry } from 'prom-client';
import { AdminSurface } from '../guards/listener.guard';
import { Public } from '../guards/public.decorator';
import { MetricsTokenGuard } from '../guards/metrics-token.guard';
import { METRICS_REGISTRY } from '../../infra/metrics/metrics.registry';
import { scrapeText } from '../../infra/metrics/cluster-metrics';

@Public()
@AdminSurface()
@Controller()
export class MetricsController {
  constructor(@Inject(METRICS_REGISTRY) private readonly registry: Registry) {}

  @Get()
  @UseGuards(MetricsTokenGuard)
  async index(@Res() res: Response): Promise<void> {
    let body: string;
    try {
      body = await scrapeText(this.registry);
    } catch {
      // WORKERS > 1 and another worker or the primary is stuck: a partial sum would read as a
      // counter reset, so this scrape is skipped (Prometheus keeps the last one).
      res.status(503).setHeader('Retry-After', '1');
      res.setHeader('Cache-Control', 'no-store');
      res.send('metrics of every worker are not available now\n');
      return;
    }
    res.status(200).setHeader('Content-Type', this.registry.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.send(body);
  }
}
