/** Cross-cutting providers: the clock, the error filter and the validation pipe. */
import { Global, Module } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { Clock, SystemClock } from './clock';
import { HttpExceptionFilter } from './http-exception.filter';
import { StrictValidationPipe } from './validation.pipe';

@Global()
@Module({
  providers: [
    { provide: Clock, useClass: SystemClock },
    { provide: APP_FILTER, useClass: HttpExceptionFilter },
    { provide: APP_PIPE, useClass: StrictValidationPipe },
  ],
  exports: [Clock],
})
export class CommonModule {}
