/**
 * Protects /metrics when METRICS_TOKEN is set: `Authorization: Bearer <METRICS_TOKEN>`,
 * compared in constant time, failures counted like other authentication failures. Without
 * METRICS_TOKEN, /metrics is open (keep it on an internal network then).
 */
import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import { AuthFailureLimiter } from '../../modules/auth/auth-failure-limiter';
import { requireBearerSecret } from '../../modules/auth/bearer-secret';
import type { AppRequest } from '../core/app-request';
import { clientAddress } from '../core/listeners';

@Injectable()
export class MetricsTokenGuard implements CanActivate {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly failures: AuthFailureLimiter,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const expected = this.config.metricsToken;
    if (expected === null) return true;
    const req = context.switchToHttp().getRequest<AppRequest>();
    await requireBearerSecret(clientAddress(req), req.headers.authorization, expected, this.failures, {
      missing: 'missing_metrics_token',
      invalid: 'invalid_metrics_token',
      label: 'metrics token',
    });
    return true;
  }
}
