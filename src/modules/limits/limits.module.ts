/**
 * The limits a request must pass (API.md "Rate limits", "Quotas", `max_concurrent`): the per-key
 * rate limits (RateLimits, called by the rate-limit guard), the monthly quotas (QuotaService,
 * with batched token charges) and the key's concurrency (KeyConcurrency); every refusal is
 * recorded by LimitRejections. Not global: shutdown hooks of non-global modules run before the
 * global database closes, so queued token charges are written first.
 */
import { Module } from '@nestjs/common';
import { StoresModule } from '../../stores/stores.module';
import { KeyConcurrency } from './key-concurrency';
import { LimitRejections } from './limit-rejections';
import { QuotaService } from './quota.service';
import { QuotaTokenCharges } from './quota-token-charges';
import { RateLimits } from './rate-limits';

@Module({
  imports: [StoresModule],
  providers: [LimitRejections, RateLimits, QuotaTokenCharges, QuotaService, KeyConcurrency],
  exports: [StoresModule, LimitRejections, RateLimits, QuotaService, KeyConcurrency],
})
export class LimitsModule {}
