/** Cross-cutting providers: the clock, in-flight work, the error filter, body errors and the validation pipe. */
import { Global, Module } from '@nestjs/common';
import { APP_FILTER, APP_INTERCEPTOR, APP_PIPE } from '@nestjs/core';
import { BodyErrorInterceptor } from '../../http/errors/body-error.interceptor';
import { Clock, SystemClock } from '../../contracts/clock';
import { HttpExceptionFilter } from '../../http/errors/http-exception.filter';
import { InFlightWork } from './in-flight-work';
import { StrictValidationPipe } from '../../http/errors/validation.pipe';

@Global()
@Module({
  providers: [
    { provide: Clock, useClass: SystemClock },
    InFlightWork,
    { provide: APP_FILTER, useClass: HttpExceptionFilter },
    { provide: APP_PIPE, useClass: StrictValidationPipe },
    { provide: APP_INTERCEPTOR, useClass: BodyErrorInterceptor },
  ],
  exports: [Clock, InFlightWork],
})
export class CommonModule {}
