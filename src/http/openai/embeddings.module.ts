import { Module } from '@nestjs/common';
import { GenerationModule } from '../../modules/generation/generation.module';
import { EmbeddingsController } from './embeddings.controller';

@Module({ imports: [GenerationModule], controllers: [EmbeddingsController] })
export class EmbeddingsModule {}
