/** Guards /admin/*: `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. */
import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { AppError } from '../common/app-error';
import type { AppRequest } from '../common/request-context';
import type { AppConfig } from '../config/app.config';
import { APP_CONFIG } from '../config/config.module';
import { secretsEqual } from '../auth/api-key.crypto';
import { bearerToken } from '../auth/api-key.guard';
import { AuthFailureLimiter } from '../auth/auth-failure-limiter';

@Injectable()
export class AdminTokenGuard implements CanActivate {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly failures: AuthFailureLimiter,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<AppRequest>();
    if (!req.headers.authorization) {
      throw new AppError('missing_admin_token', 'send the admin token in Authorization: Bearer');
    }
    const token = bearerToken(req.headers.authorization);
    if (token === null || !secretsEqual(token, this.config.adminToken)) {
      throw await this.failures.reject(req.ip ?? 'unknown', new AppError('invalid_admin_token', 'the admin token is not valid'));
    }
    return true;
  }
}
