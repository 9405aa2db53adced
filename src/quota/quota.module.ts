/** Monthly request and token quotas: reservation, release and token charges on api_keys. */
import { Global, Module } from '@nestjs/common';
import { QuotaService } from './quota.service';

@Global()
@Module({ providers: [QuotaService], exports: [QuotaService] })
export class QuotaModule {}
