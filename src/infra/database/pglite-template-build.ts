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

/**
 * initdb's template0 and template1 (two thirds of the files besides the WAL): the gateway uses the
 * `postgres` database only and never creates one, and every new data directory copies them.
 */
async function dropTemplateDatabases(dataSource: DataSource): Promise<void> {
  for (const name of ['template0', 'template1']) {
    await dataSource.query(`ALTER DATABASE ${name} IS_TEMPLATE false`);
    await dataSource.query(`DROP DATABASE ${name}`);
  }
  await dataSource.query('CHECKPOINT');
}

export async function buildTemplate(dir: string): Promise<void> {
  const partial = `${dir}.building-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  // template: null: made by initdb, never seeded from an older template.
  const dataSource = await new DataSource(
    dataSourceOptions({ kind: 'pglite', dataDir: partial, template: null }),
  ).initialize();
  try {
    await runMigrations(dataSource);
    await dropTemplateDatabases(dataSource);
  } finally {
    await dataSource.destroy();
  }
  stampTemplate(partial);
  rmSync(dir, { recursive: true, force: true });
  renameSync(partial, dir);
}
