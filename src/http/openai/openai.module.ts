import { Module } from '@nestjs/common';
import { GenerationModule } from '../../modules/generation/generation.module';
import { OpenAiController } from './openai.controller';

@Module({ imports: [GenerationModule], controllers: [OpenAiController] })
export class OpenAiModule {}
