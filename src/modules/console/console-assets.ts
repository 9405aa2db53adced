/**
 * The built admin console (dist/admin-ui, written by `npm run build`), read once into memory at
 * startup. Only files found there are ever served, looked up by exact relative path, so no
 * request path reaches the file system. When the console was not built, every lookup misses
 * and /admin/ui answers 404 saying so.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, resolve, sep } from 'node:path';
import { Inject, Injectable } from '@nestjs/common';

/** The directory holding the built console; a provider so tests can serve a fresh build. */
export const CONSOLE_ROOT = Symbol('CONSOLE_ROOT');
/** Same path from src/modules/console (tests, `nest start`) and dist/modules/console (the built server). */
export const DEFAULT_CONSOLE_ROOT = resolve(__dirname, '..', '..', '..', 'dist', 'admin-ui');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

export interface ConsoleAsset {
  body: Buffer;
  contentType: string;
  /** Vite puts a content hash in every file name under assets/: those never change. */
  immutable: boolean;
}

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

@Injectable()
export class ConsoleAssets {
  private readonly files = new Map<string, ConsoleAsset>();

  constructor(@Inject(CONSOLE_ROOT) readonly root: string) {
    let paths: string[];
    try {
      paths = listFiles(root);
    } catch {
      return;
    }
    for (const path of paths) {
      const contentType = CONTENT_TYPES[extname(path)];
      if (!contentType) continue;
      const name = relative(root, path).split(sep).join('/');
      this.files.set(name, { body: readFileSync(path), contentType, immutable: name.startsWith('assets/') });
    }
  }

  get built(): boolean {
    return this.files.has('index.html');
  }

  /** `path` relative to /admin/ui/, e.g. `assets/index-3f2a.js`; the empty path is the page. */
  find(path: string): ConsoleAsset | undefined {
    return this.files.get(path === '' ? 'index.html' : path);
  }
}
