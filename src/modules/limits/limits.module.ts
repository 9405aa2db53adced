/**
 * The limits a request must pass (API.md "Rate limits", "Quotas", `max_concurrent`): the per-key
 * rate limits (RateLimits, called by the rate-limit guard), the monthly quotas' reservations
 * (QuotaService) and the key's concurrency (KeyConcurrency); every refusal is recorded by
 * LimitRejections. What a request then costs is written by the usage module.
 */
import { Module } from '@nestjs/common';
import { StoresModule } from '../../stores/stores.module';
import { KeyConcurrency } from './key-concurrency';
import { LimitRejections } from './limit-rejections';
import { QuotaService } from './quota.service';
import { RateLimits } from './rate-limits';

@Module({
  imports: [StoresModule],
  providers: [LimitRejections, RateLimits, QuotaService, KeyConcurrency],
  exports: [StoresModule, LimitRejections, RateLimits, QuotaService, KeyConcurrency],
})
export class LimitsModule {}
