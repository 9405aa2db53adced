/**
 * The tests' PGlite template: the product's own (src/infra/database/pglite-template.ts), made
 * once per change of the migrations, PGlite, its settings or the builder, in the system's temp
 * directory.
 * Every in-process app's data directory starts as a copy of it (a file copy and PostgreSQL's
 * start: about a third of a boot from a dump, and no initdb); Jest's global setup makes it.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGLITE_SETTINGS } from '../../src/infra/database/pglite-pool';
import { buildTemplate } from '../../src/infra/database/pglite-template-build';
import { readMigrationFiles } from '../../src/infra/database/sql-migrations';

/**
 * Where test databases live: a RAM file system when the machine has one (/dev/shm on Linux), so
 * the copy of the template each app starts from is a memory copy, not disk writes the kernel
 * flushes while the suite runs (a tenth of `npm test`'s wall time on this machine's disk);
 * TEST_SCRATCH_DIR chooses another place, else the system's temp directory.
 */
export const SCRATCH_ROOT = ((): string => {
  if (process.env.TEST_SCRATCH_DIR) return process.env.TEST_SCRATCH_DIR;
  try {
    accessSync('/dev/shm', constants.W_OK);
    if (statSync('/dev/shm').isDirectory()) return '/dev/shm';
  } catch {
    // no RAM file system here
  }
  return tmpdir();
})();

/** A new directory under SCRATCH_ROOT, for one test app's DATA_DIR. */
export function scratchDir(prefix: string): string {
  return mkdtempSync(join(SCRATCH_ROOT, prefix));
}

export function testTemplatePath(): string {
  const hash = createHash('sha256');
  const pgliteManifest = join(__dirname, '..', '..', 'node_modules', '@electric-sql', 'pglite', 'package.json');
  hash.update(JSON.parse(readFileSync(pgliteManifest, 'utf8')).version).update(PGLITE_SETTINGS.join(' '));
  // How the template is made counts too (what it drops, say).
  hash.update(readFileSync(join(__dirname, '..', '..', 'src', 'infra', 'database', 'pglite-template-build.ts')));
  for (const migration of readMigrationFiles()) hash.update(migration.file).update(migration.up);
  return join(SCRATCH_ROOT, `llm-server-pglite-template-${hash.digest('hex').slice(0, 16)}`);
}

export async function ensureTestTemplate(): Promise<string> {
  const path = testTemplatePath();
  if (existsSync(path)) return path;
  try {
    await buildTemplate(path);
  } catch (error) {
    // Another run made it at the same moment (its rename came first): theirs is as good.
    if (!existsSync(path)) throw error;
  }
  return path;
}
