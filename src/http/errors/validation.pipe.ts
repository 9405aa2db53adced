/**
 * Request validation with class-validator: no type coercion ("10" is not an integer), unknown
 * fields rejected, and the first failing field reported as `param` in a 400.
 */
import { type ArgumentMetadata, Injectable, ValidationPipe, type ValidationError } from '@nestjs/common';
import { invalidRequest } from '../../contracts/app-error';

function firstError(errors: ValidationError[], parent = ''): { param: string; message: string } {
  const error = errors[0];
  const param = parent ? `${parent}.${error.property}` : error.property;
  if (error.children && error.children.length > 0) return firstError(error.children, param);
  const constraints = Object.values(error.constraints ?? {});
  const message = constraints[0] ?? `${param} is invalid`;
  return { param, message };
}

@Injectable()
export class StrictValidationPipe extends ValidationPipe {
  constructor() {
    super({
      whitelist: true,
      forbidNonWhitelisted: true,
      forbidUnknownValues: true,
      transform: true,
      transformOptions: { enableImplicitConversion: false, exposeDefaultValues: false },
      validationError: { target: false, value: false },
      exceptionFactory: (errors) => {
        const { param, message } = firstError(errors);
        return invalidRequest(message.replace(/^property (\S+) should not exist$/, 'unknown field $1'), param);
      },
    });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'body' && metadata.metatype && !isPlainObject(value)) {
      throw invalidRequest('request body must be a JSON object');
    }
    return super.transform(value, metadata);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
