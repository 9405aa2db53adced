import { Global, Module } from '@nestjs/common';
import { UsageLedgerService } from './usage-ledger.service';

@Global()
@Module({ providers: [UsageLedgerService], exports: [UsageLedgerService] })
export class UsageModule {}
