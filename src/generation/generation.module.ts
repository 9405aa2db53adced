/** POST /v1/generate over the configured backends: routing, fallbacks, timeouts, streaming. */
import { Module } from '@nestjs/common';
import { GenerationController } from './generation.controller';
import { GenerationHandler } from './generation.handler';
import { GenerationService } from './generation.service';
import { ModelRegistry, PROVIDER_FACTORY } from './model-registry';
import { createProvider } from './providers/provider.factory';

@Module({
  controllers: [GenerationController],
  providers: [
    { provide: PROVIDER_FACTORY, useValue: createProvider },
    ModelRegistry,
    GenerationService,
    GenerationHandler,
  ],
  exports: [ModelRegistry, GenerationService],
})
export class GenerationModule {}
