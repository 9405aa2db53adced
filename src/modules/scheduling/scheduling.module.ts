/**
 * Who goes where and when (API.md "Scheduling"): the model registry (every model's providers and
 * circuit breakers), and per model the scheduler that admits requests by priority and fairly
 * across keys, orders its upstreams (least outstanding, weighted, prefix affinity) and reads
 * vLLM's own load.
 */
import { Module } from '@nestjs/common';
import { ProvidersModule } from '../providers/providers.module';
import { StoresModule } from '../../stores/stores.module';
import { ModelRegistry } from './model-registry';
import { Scheduler } from './scheduler.service';

@Module({
  imports: [ProvidersModule, StoresModule],
  providers: [ModelRegistry, Scheduler],
  exports: [ModelRegistry, Scheduler],
})
export class SchedulingModule {}
