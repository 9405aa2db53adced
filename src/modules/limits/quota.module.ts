/**
 * Monthly request and token quotas: reservation, release and token charges on api_keys. Not
 * @Global on purpose (UsageModule re-exports it): Nest runs shutdown hooks of non-global modules
 * before those of global ones, so queued token charges are written before the database closes.
 */
import { Module } from '@nestjs/common';
import { QuotaService } from './quota.service';

@Module({ providers: [QuotaService], exports: [QuotaService] })
export class QuotaModule {}
