/**
 * Makes a PGlite template (pglite-template.ts): initdb and every migration in a directory beside
 * `dir`, stamped once closed and renamed into place, so a reader never sees half a template.
 * Run by `npm run build` (scripts/build-pglite-template.js, into dist/) and by the tests' global
 * setup (their own, keyed by the migrations).
 */
import { renameSync, rmSync } from 'node:fs';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from './data-source';
import { runMigrations } from './migrate';
import { stampTemplate } from './pglite-template';

export async function buildTemplate(dir: string): Promise<void> {
  const partial = `${dir}.building-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  // template: null: made by initdb, never seeded from an older template.
  const dataSource = await new DataSource(
    dataSourceOptions({ kind: 'pglite', dataDir: partial, template: null }),
  ).initialize();
  try {
    await runMigrations(dataSource);
  } finally {
    await dataSource.destroy();
  }
  stampTemplate(partial);
  rmSync(dir, { recursive: true, force: true });
  renameSync(partial, dir);
}
