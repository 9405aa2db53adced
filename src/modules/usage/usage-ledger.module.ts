/**
 * The usage ledger writer, in a module of its own that is deliberately not @Global (UsageModule
 * re-exports it): Nest runs shutdown hooks of non-global modules before those of global ones,
 * so the writer's last flush happens before TypeORM's global module closes the database.
 */
import { Module } from '@nestjs/common';
import { DEFAULT_FLUSH_INTERVAL_MS, LEDGER_FLUSH_INTERVAL_MS, UsageLedgerWriter } from './usage-ledger.writer';

@Module({
  providers: [{ provide: LEDGER_FLUSH_INTERVAL_MS, useValue: DEFAULT_FLUSH_INTERVAL_MS }, UsageLedgerWriter],
  exports: [UsageLedgerWriter],
})
export class UsageLedgerModule {}
