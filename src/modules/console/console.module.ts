/** The admin console's static files at /admin/ui (see console.controller.ts). */
import { Module } from '@nestjs/common';
import { CONSOLE_ROOT, ConsoleAssets, DEFAULT_CONSOLE_ROOT } from './console-assets';
import { ConsoleController } from '../../http/admin/console.controller';

@Module({
  controllers: [ConsoleController],
  providers: [{ provide: CONSOLE_ROOT, useValue: DEFAULT_CONSOLE_ROOT }, ConsoleAssets],
})
export class ConsoleModule {}
