/** The admin API (/admin/*), guarded by ADMIN_TOKEN. */
import { Module } from '@nestjs/common';
import { AdminKeysController } from './admin-keys.controller';
import { AdminKeysService } from './admin-keys.service';
import { AdminTokenGuard } from './admin-token.guard';

@Module({ controllers: [AdminKeysController], providers: [AdminKeysService, AdminTokenGuard] })
export class AdminModule {}
