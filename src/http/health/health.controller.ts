/**
 * GET /healthz: liveness, touches nothing. GET /readyz: readiness in the Terminus body, on 200
 * and on 503 alike (the one route outside the error envelope, per API.md). Both are public.
 */
import { Controller, Get, HttpCode, Inject, Res, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheckService, type HealthCheckResult, type HealthIndicatorResult } from '@nestjs/terminus';
import type { Response } from 'express';
import { AnyListener } from '../guards/listener.guard';
import { Public } from '../guards/public.decorator';
import { ReadinessMetrics } from '../../infra/metrics/readiness-metrics';
import { APP_LOGGER, type AppLogger } from '../../infra/logging/logger';
import { ReadinessService } from '../../modules/health/readiness.service';
import { ShutdownState } from '../../infra/lifecycle/shutdown-state';

/** What /readyz answers while the server drains: no dependency is checked any more. */
export const SHUTTING_DOWN_BODY: HealthCheckResult = {
  status: 'shutting_down',
  info: {},
  error: { shutdown: { status: 'down', message: 'the server is shutting down' } },
  details: { shutdown: { status: 'down', message: 'the server is shutting down' } },
};

/** Adds optional indicators to the body (details, and error when down) without changing the status. */
function withOptional(result: HealthCheckResult, optional: HealthIndicatorResult[]): HealthCheckResult {
  const merged = { ...result, details: { ...result.details } };
  for (const indicator of optional) {
    Object.assign(merged.details, indicator);
    const down = Object.entries(indicator).filter(([, state]) => state.status === 'down');
    if (down.length > 0) merged.error = { ...(merged.error ?? {}), ...Object.fromEntries(down) };
  }
  return merged;
}

@Public()
@AnyListener()
@Controller()
export class HealthController {
  /** Readiness of the previous /readyz call, to log changes only (probes come every few seconds). */
  private lastReady: boolean | null = null;

  constructor(
    private readonly health: HealthCheckService,
    private readonly readiness: ReadinessService,
    private readonly shutdown: ShutdownState,
    private readonly metrics: ReadinessMetrics,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
  ) {}

  @Get('healthz')
  @HttpCode(200)
  healthz(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('readyz')
  async readyz(@Res() res: Response): Promise<void> {
    res.setHeader('Cache-Control', 'no-store');
    // Counted once the answer is sent: a probe whose client went away is not an answer.
    res.once('finish', () => this.metrics.answered(res.statusCode === 200));
    if (this.shutdown.shuttingDown) {
      res.status(503).json(SHUTTING_DOWN_BODY);
      return;
    }
    let result: HealthCheckResult;
    const optional = Promise.all(this.readiness.optionalIndicators().map((indicator) => indicator()));
    try {
      result = await this.health.check(this.readiness.indicatorsToRun());
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      result = error.getResponse() as HealthCheckResult;
    }
    result = withOptional(result, await optional);
    // Shutdown may have begun while the checks ran: say so rather than report stale checks.
    if (this.shutdown.shuttingDown) result = SHUTTING_DOWN_BODY;
    const ready = result.status === 'ok' || result.status === 'degraded';
    this.logChange(ready, result);
    res.status(ready ? 200 : 503).json(result);
  }

  private logChange(ready: boolean, result: HealthCheckResult): void {
    if (ready === this.lastReady || result.status === 'shutting_down') return;
    this.lastReady = ready;
    if (ready) this.logger.info('readiness: ready');
    else this.logger.warn({ failing: result.error ?? {} }, 'readiness: not ready');
  }
}
