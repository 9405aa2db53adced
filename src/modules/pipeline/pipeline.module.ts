/** The request path of every generation API: limits, cache, backend call and bill in order (generation-pipeline.ts). */
import { Module } from '@nestjs/common';
import { CacheModule } from '../cache/cache.module';
import { GenerationModule } from '../generation/generation.module';
import { LimitsModule } from '../limits/limits.module';
import { UsageModule } from '../usage/usage.module';
import { GenerationPipeline } from './generation-pipeline';

@Module({
  imports: [LimitsModule, UsageModule, CacheModule, GenerationModule],
  providers: [GenerationPipeline],
  exports: [GenerationPipeline, GenerationModule],
})
export class PipelineModule {}
