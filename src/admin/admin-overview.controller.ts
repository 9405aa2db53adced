/**
 * Read-only admin views the console needs beside /admin/keys: usage over all keys and the
 * model registry with upstream states. Same guard as the key routes.
 */
import { Controller, Get, Query, UseGuards } from '@nestjs/common';
import { Public } from '../common/public.decorator';
import { AdminModelsService } from './admin-models.service';
import { AdminTokenGuard } from './admin-token.guard';
import { AdminUsageService } from './admin-usage.service';

@Public()
@UseGuards(AdminTokenGuard)
@Controller('admin')
export class AdminOverviewController {
  constructor(
    private readonly usage: AdminUsageService,
    private readonly models: AdminModelsService,
  ) {}

  @Get('usage')
  usageTotals(@Query('from') from: unknown, @Query('to') to: unknown) {
    return this.usage.totals(from, to);
  }

  @Get('models')
  modelRegistry() {
    return this.models.list();
  }
}
