/** Generation over the configured backends: routing, fallbacks, timeouts, streaming, cache, accounting. */
import { Module } from '@nestjs/common';
import { GenerationController } from './generation.controller';
import { GenerationPipeline } from './generation-pipeline';
import { GenerationService } from './generation.service';
import { ModelRegistry, PROVIDER_FACTORY } from './model-registry';
import { createProvider } from './providers/provider.factory';

@Module({
  controllers: [GenerationController],
  providers: [
    { provide: PROVIDER_FACTORY, useValue: createProvider },
    ModelRegistry,
    GenerationService,
    GenerationPipeline,
  ],
  exports: [ModelRegistry, GenerationService, GenerationPipeline],
})
export class GenerationModule {}
