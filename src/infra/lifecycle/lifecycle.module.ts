/**
 * The process's own state every layer may read: the clock (a port, so tests move time), the
 * request work a shutdown waits for, whether shutdown has begun, and the health of each shared
 * dependency (dependency-health.ts, owned by the database and Redis connections).
 */
import { Global, Module } from '@nestjs/common';
import { Clock, SystemClock } from '../../contracts/clock';
import { InFlightWork } from './in-flight-work';
import { ShutdownState } from './shutdown-state';

@Global()
@Module({
  providers: [{ provide: Clock, useClass: SystemClock }, InFlightWork, ShutdownState],
  exports: [Clock, InFlightWork, ShutdownState],
})
export class LifecycleModule {}
