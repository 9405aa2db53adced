/**
 * The embedded database's template: a PGlite data directory made at build time (initdb and every
 * migration of the build), copied into place when the server meets a data directory that does not
 * exist yet. initdb in a throwaway WebAssembly instance is most of a fresh start's time and leaves
 * that instance's heap behind (~300 MB of RSS that V8 returns late); a copy of files costs neither.
 * Migrations still run at startup, so a template older than the code is only a head start.
 *
 * `npm run build` writes it to dist/pglite-template (scripts/build-pglite-template.js). Without it
 * (running from sources, the tests' own build) PGlite runs initdb as before.
 */
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

/** Beside dist/main.js: this file is dist/infra/database/pglite-template.js once built. */
export const TEMPLATE_DIR = join(__dirname, '..', '..', 'pglite-template');
const STAMP = '.llm-server-template';

/** The installed PGlite's version: a template from another version is not used. */
function pgliteVersion(): string {
  // The package's exports map hides package.json; its entry point is <package>/dist/index.cjs.
  const manifest = join(dirname(require.resolve('@electric-sql/pglite')), '..', 'package.json');
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
}

function usableTemplate(template: string): boolean {
  try {
    return readFileSync(join(template, STAMP), 'utf8') === pgliteVersion();
  } catch {
    return false;
  }
}

/**
 * Gives a data directory that does not exist yet the template's files. The copy goes to a
 * sibling first and is renamed into place, so a crash mid-copy leaves no half database: the
 * next start finds no directory and copies again. A template that cannot be copied (say, files
 * another user made unreadable) is only a lost head start: false, and PGlite runs initdb.
 */
export function seedFromTemplate(dataDir: string, template = TEMPLATE_DIR): boolean {
  if (existsSync(dataDir) || !usableTemplate(template)) return false;
  mkdirSync(dirname(dataDir), { recursive: true });
  const partial = `${dataDir}.seeding-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  try {
    cpSync(template, partial, { recursive: true, filter: (source) => !source.endsWith(STAMP) });
  } catch {
    rmSync(partial, { recursive: true, force: true });
    return false;
  }
  renameSync(partial, dataDir);
  return true;
}

/**
 * Marks a freshly made data directory (initdb and migrations done, instance closed) as the
 * template, readable by everyone: it is built by whoever builds (root, in the image) and copied
 * by whoever runs the server (the image's user 1000). PostgreSQL makes some files 0600.
 */
export function stampTemplate(dir: string): void {
  writeFileSync(join(dir, STAMP), pgliteVersion());
  makeReadable(dir);
}

function makeReadable(path: string): void {
  const stats = statSync(path);
  chmodSync(path, stats.mode | (stats.isDirectory() ? 0o555 : 0o444));
  if (stats.isDirectory()) for (const entry of readdirSync(path)) makeReadable(join(path, entry));
}
