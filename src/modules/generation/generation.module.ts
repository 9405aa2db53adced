/**
 * Generation over the configured backends: scheduling (queues, routing, per-key concurrency; the
 * code is in scheduling/), fallbacks, timeouts, streaming, cache, accounting.
 */
import { Module } from '@nestjs/common';
import { GenerationController } from '../../http/generate/generate.controller';
import { GenerationPipeline } from '../pipeline/generation-pipeline';
import { GenerationService } from './generation.service';
import { ModelRegistry, PROVIDER_FACTORY } from '../scheduling/model-registry';
import { createProvider } from '../providers/provider.factory';
import { KeyConcurrency } from '../limits/key-concurrency';
import { Scheduler } from '../scheduling/scheduler.service';

@Module({
  controllers: [GenerationController],
  providers: [
    { provide: PROVIDER_FACTORY, useValue: createProvider },
    ModelRegistry,
    Scheduler,
    KeyConcurrency,
    GenerationService,
    GenerationPipeline,
  ],
  exports: [ModelRegistry, GenerationService, GenerationPipeline],
})
export class GenerationModule {}
