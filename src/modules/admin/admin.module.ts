/** The admin API (/admin/*), guarded by ADMIN_TOKEN. */
import { Module } from '@nestjs/common';
import { GenerationModule } from '../generation/generation.module';
import { AdminKeysController } from '../../http/admin/admin-keys.controller';
import { AdminKeysService } from './admin-keys.service';
import { AdminModelsService } from './admin-models.service';
import { AdminOverviewController } from '../../http/admin/admin-overview.controller';
import { AdminTokenGuard } from '../../http/guards/admin-token.guard';

@Module({
  imports: [GenerationModule],
  controllers: [AdminKeysController, AdminOverviewController],
  providers: [AdminKeysService, AdminTokenGuard, AdminModelsService],
})
export class AdminModule {}
