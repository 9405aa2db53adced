import { Module } from '@nestjs/common';
import { GenerationModule } from '../generation/generation.module';
import { EmbeddingsController } from './embeddings.controller';

@Module({ imports: [GenerationModule], controllers: [EmbeddingsController] })
export class EmbeddingsModule {}
