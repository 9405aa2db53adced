/** Usage of keys: per-generation accounting (quota, TPM, ledger), the daily usage ledger, and the quotas. */
import { Global, Module } from '@nestjs/common';
import { QuotaModule } from '../limits/quota.module';
import { UsageAccounting } from './usage-accounting';
import { UsageLedgerService } from './usage-ledger.service';
import { UsageLedgerModule } from './usage-ledger.module';

@Global()
@Module({
  imports: [UsageLedgerModule, QuotaModule],
  providers: [UsageLedgerService, UsageAccounting],
  exports: [UsageLedgerService, UsageLedgerModule, QuotaModule, UsageAccounting],
})
export class UsageModule {}
