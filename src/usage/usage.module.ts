/** Usage of keys: per-generation accounting (quota, TPM, ledger) and the daily usage ledger. */
import { Global, Module } from '@nestjs/common';
import { UsageAccounting } from './usage-accounting';
import { UsageLedgerService } from './usage-ledger.service';
import { UsageLedgerWriter } from './usage-ledger.writer';

@Global()
@Module({
  providers: [UsageLedgerWriter, UsageLedgerService, UsageAccounting],
  exports: [UsageLedgerService, UsageLedgerWriter, UsageAccounting],
})
export class UsageModule {}
