/** The backends: one LlmProvider per upstream of each model, built by the factory this module provides. */
import { Module } from '@nestjs/common';
import { createProvider } from './provider.factory';
import { PROVIDER_FACTORY } from './provider.types';

@Module({
  providers: [{ provide: PROVIDER_FACTORY, useValue: createProvider }],
  exports: [PROVIDER_FACTORY],
})
export class ProvidersModule {}
