/**
 * Which listener serves which routes. With ADMIN_PORT set, routes marked @AdminSurface() (the
 * admin API, its console, /metrics) are served only on the admin listener, every other route
 * only on the public one, and @AnyListener() routes (the health probes) on both. A route asked
 * for on the wrong listener is answered as if it did not exist (404 not_found), before any
 * credential is looked at. Without ADMIN_PORT there is one listener and this guard allows all.
 */
import { type CanActivate, type ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import { AppError } from '../../contracts/app-error';
import type { AppRequest } from '../core/app-request';
import { onAdminListener } from '../core/listeners';

const ADMIN_SURFACE = 'llm-server:admin-surface';
const ANY_LISTENER = 'llm-server:any-listener';

export const AdminSurface = (): MethodDecorator & ClassDecorator => SetMetadata(ADMIN_SURFACE, true);
export const AnyListener = (): MethodDecorator & ClassDecorator => SetMetadata(ANY_LISTENER, true);

@Injectable()
export class ListenerGuard implements CanActivate {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly reflector: Reflector,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    if (this.config.adminPort === null) return true;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(ANY_LISTENER, targets)) return true;
    const adminRoute = this.reflector.getAllAndOverride<boolean>(ADMIN_SURFACE, targets) === true;
    if (adminRoute === onAdminListener(context.switchToHttp().getRequest<AppRequest>())) return true;
    throw new AppError('not_found', 'no such route');
  }
}
