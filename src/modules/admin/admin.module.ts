/** Key administration (API.md "Admin API") and the read-only views the console needs. */
import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { HealthModule } from '../health/health.module';
import { LimitsModule } from '../limits/limits.module';
import { SchedulingModule } from '../scheduling/scheduling.module';
import { UsageModule } from '../usage/usage.module';
import { AdminKeysService } from './admin-keys.service';
import { AdminModelsService } from './admin-models.service';
import { AdminTeamsService } from './admin-teams.service';

@Module({
  imports: [AuthModule, LimitsModule, UsageModule, SchedulingModule, HealthModule],
  providers: [AdminKeysService, AdminModelsService, AdminTeamsService],
  exports: [AdminKeysService, AdminModelsService, AdminTeamsService, UsageModule],
})
export class AdminModule {}
