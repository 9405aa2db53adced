/** The admin console's built files, served at /admin/ui (http/admin/console.controller.ts). */
import { Module } from '@nestjs/common';
import { CONSOLE_ROOT, ConsoleAssets, DEFAULT_CONSOLE_ROOT } from './console-assets';

@Module({
  providers: [{ provide: CONSOLE_ROOT, useValue: DEFAULT_CONSOLE_ROOT }, ConsoleAssets],
  exports: [ConsoleAssets],
})
export class ConsoleModule {}
