/** Stored /v1/responses results: their rows, who may read them, and the daily sweep (response-store.ts). */
import { Module } from '@nestjs/common';
import { ResponseStore } from './response-store';

@Module({
  providers: [ResponseStore],
  exports: [ResponseStore],
})
export class StoredResponsesModule {}
