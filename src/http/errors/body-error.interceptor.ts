/** Raises a body error kept by jsonBodyMiddleware, now that the guards (401, 429) have run. */
import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import type { Observable } from 'rxjs';
import type { AppRequest } from '../core/app-request';

@Injectable()
export class BodyErrorInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const bodyError = context.switchToHttp().getRequest<AppRequest>().ctx.bodyError;
    if (bodyError) throw bodyError;
    return next.handle();
  }
}
