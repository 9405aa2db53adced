/**
 * Who pays what (API.md "Quotas", "Teams, prices and budgets"): the billing rules (billing.ts),
 * the accounting of one generation against the quotas, budgets, TPM windows and usage ledgers of
 * its key and team (UsageAccounting; BudgetUpkeep keeps reservations alive, sweeps dead ones and
 * exports the budgets' state), and the
 * writes themselves (UsageWriter: journaled, batched, exactly once; the ledger is read by
 * UsageLedgerService). Not global: shutdown hooks of non-global modules run before the global
 * database closes, so the last flush is written first.
 */
import { Module } from '@nestjs/common';
import { LimitsModule } from '../limits/limits.module';
import { BudgetUpkeep } from './budget-upkeep';
import { UsageAccounting } from './usage-accounting';
import { UsageLedgerService } from './usage-ledger.service';
import { DEFAULT_FLUSH_INTERVAL_MS, LEDGER_FLUSH_INTERVAL_MS, UsageWriter } from './usage-writer';

@Module({
  imports: [LimitsModule],
  providers: [
    { provide: LEDGER_FLUSH_INTERVAL_MS, useValue: DEFAULT_FLUSH_INTERVAL_MS },
    UsageWriter,
    UsageLedgerService,
    UsageAccounting,
    BudgetUpkeep,
  ],
  exports: [UsageLedgerService, UsageAccounting, UsageWriter],
})
export class UsageModule {}
