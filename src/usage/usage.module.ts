/** Usage of keys: per-generation accounting (quota, TPM, ledger) and the daily usage ledger. */
import { Global, Module } from '@nestjs/common';
import { UsageAccounting } from './usage-accounting';
import { UsageLedgerService } from './usage-ledger.service';
import { UsageLedgerModule } from './usage-ledger.module';

@Global()
@Module({
  imports: [UsageLedgerModule],
  providers: [UsageLedgerService, UsageAccounting],
  exports: [UsageLedgerService, UsageLedgerModule, UsageAccounting],
})
export class UsageModule {}
