/**
 * Generation over the configured backends: a validated request resolved against the model
 * registry (RequestResolver), and its backend call: admission by the scheduler, then the
 * upstreams and fallbacks in order until one answers (BackendCalls, UpstreamFailover).
 */
import { Module } from '@nestjs/common';
import { SchedulingModule } from '../scheduling/scheduling.module';
import { BackendCalls } from './backend-call';
import { UpstreamFailover } from './failover';
import { RequestResolver } from './request-resolver';

@Module({
  imports: [SchedulingModule],
  providers: [RequestResolver, UpstreamFailover, BackendCalls],
  exports: [RequestResolver, BackendCalls],
})
export class GenerationModule {}
