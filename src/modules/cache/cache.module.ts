/** The completion cache and request coalescing; where entries and locks live is decided by StoresModule. */
import { Global, Module } from '@nestjs/common';
import { CompletionCache } from './completion-cache.service';

@Global()
@Module({ providers: [CompletionCache], exports: [CompletionCache] })
export class CacheModule {}
