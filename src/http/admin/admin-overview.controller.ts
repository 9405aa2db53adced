/**
 * Read-only admin views the console needs beside /admin/keys: usage over all keys and the
 * model registry with upstream states. Same guard as the key routes.
 */
import { Controller, Get, Query, UseGuards } from '@nestjs/common';
import { Clock } from '../../contracts/clock';
import { AdminSurface } from '../guards/listener.guard';
import { Public } from '../guards/public.decorator';
import { UsageLedgerService } from '../../modules/usage/usage-ledger.service';
import { AdminModelsService } from '../../modules/admin/admin-models.service';
import { parseDayRange } from '../../modules/admin/admin-query';
import { AdminTokenGuard } from '../guards/admin-token.guard';

@Public()
@AdminSurface()
@UseGuards(AdminTokenGuard)
@Controller('admin')
export class AdminOverviewController {
  constructor(
    private readonly usage: UsageLedgerService,
    private readonly models: AdminModelsService,
    private readonly clock: Clock,
  ) {}

  /** Usage over all keys per UTC day and model (the console's overview). */
  @Get('usage')
  async usageTotals(@Query('from') fromParam: unknown, @Query('to') toParam: unknown) {
    const { from, to } = parseDayRange(fromParam, toParam, this.clock.now());
    return { from, to, data: await this.usage.daily(null, from, to) };
  }

  @Get('models')
  modelRegistry() {
    return this.models.list();
  }
}
