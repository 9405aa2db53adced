/**
 * Protects /metrics when METRICS_TOKEN is set: `Authorization: Bearer <METRICS_TOKEN>`,
 * compared in constant time, failures counted like other authentication failures. Without
 * METRICS_TOKEN, /metrics is open (keep it on an internal network then).
 */
import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { secretsEqual } from '../auth/api-key.crypto';
import { bearerToken } from '../auth/api-key.guard';
import { AuthFailureLimiter } from '../auth/auth-failure-limiter';
import { AppError } from '../common/app-error';
import type { AppRequest } from '../common/request-context';
import type { AppConfig } from '../config/app.config';
import { APP_CONFIG } from '../config/config.module';

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
    if (!req.headers.authorization) {
      throw new AppError('missing_metrics_token', 'send the metrics token in Authorization: Bearer');
    }
    const token = bearerToken(req.headers.authorization);
    if (token === null || !secretsEqual(token, expected)) {
      throw await this.failures.reject(
        req.ip ?? 'unknown',
        new AppError('invalid_metrics_token', 'the metrics token is not valid'),
      );
    }
    return true;
  }
}
