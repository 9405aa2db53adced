/** Guards /admin/*: `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. */
import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import { AuthFailureLimiter } from '../../modules/auth/auth-failure-limiter';
import { requireBearerSecret } from '../../modules/auth/bearer-secret';
import type { AppRequest } from '../core/app-request';
import { clientAddress } from '../core/listeners';

@Injectable()
export class AdminTokenGuard implements CanActivate {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly failures: AuthFailureLimiter,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<AppRequest>();
    await requireBearerSecret(clientAddress(req), req.headers.authorization, this.config.adminToken, this.failures, {
      missing: 'missing_admin_token',
      invalid: 'invalid_admin_token',
      label: 'admin token',
    });
    return true;
  }
}
