/** The completion cache and request coalescing; where entries and locks live is decided by StoresModule. */
import { Module } from '@nestjs/common';
import { StoresModule } from '../../stores/stores.module';
import { CompletionCache } from './completion-cache.service';

@Module({ imports: [StoresModule], providers: [CompletionCache], exports: [CompletionCache] })
export class CacheModule {}
