/**
 * GET /admin/ui: the admin console, a static single-page app. The page holds no data, so it is
 * public; every API call it makes carries the admin token itself. Under admin/ so that it is
 * served wherever the admin routes are.
 *
 * The page gets its own Content-Security-Policy instead of the API's `default-src 'none'`:
 * scripts, styles, images and fetches from this origin only, no inline script or style, no
 * plugins, frames, forms posting elsewhere or <base>, and Trusted Types so that no string can
 * reach an HTML sink (innerHTML and the like) even by mistake.
 */
import { Controller, Get, Param, Res } from '@nestjs/common';
import type { Response } from 'express';
import { AppError } from '../../contracts/app-error';
import { AdminSurface } from '../guards/listener.guard';
import { Public } from '../guards/public.decorator';
import { ConsoleAssets } from '../../modules/console/console-assets';

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

@Public()
@AdminSurface()
@Controller('admin/ui')
export class ConsoleController {
  constructor(private readonly assets: ConsoleAssets) {}

  @Get()
  page(@Res() res: Response): void {
    this.send(res, '');
  }

  @Get('*path')
  file(@Param('path') path: string[], @Res() res: Response): void {
    this.send(res, path.join('/'));
  }

  private send(res: Response, path: string): void {
    const asset = this.assets.find(path);
    if (!asset) {
      throw new AppError(
        'not_found',
        this.assets.built ? 'no such file in the admin console' : 'the admin console is not built: run `npm run build`',
      );
    }
    res.setHeader('Content-Security-Policy', CONSOLE_CSP);
    res.setHeader('Content-Type', asset.contentType);
    // The page must be revalidated so a new build's asset names are picked up at once.
    res.setHeader('Cache-Control', asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    res.status(200).send(asset.body);
  }
}
