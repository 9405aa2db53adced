/**
 * An embedded database already migrated, dumped once and reused: starting PGlite from a dump
 * skips initdb and the migrations, which is most of an in-process app's boot. The file is keyed
 * by the migrations and the PGlite version, so a changed migration makes a new one. Jest's
 * global setup writes it; every test app starts from it (test/harness/app.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/infra/database/data-source';
import { runMigrations } from '../../src/infra/database/migrate';
import { readMigrationFiles } from '../../src/infra/database/sql-migrations';

export function snapshotPath(): string {
  const hash = createHash('sha256');
  const pgliteManifest = join(__dirname, '..', '..', 'node_modules', '@electric-sql', 'pglite', 'package.json');
  hash.update(JSON.parse(readFileSync(pgliteManifest, 'utf8')).version);
  for (const migration of readMigrationFiles()) hash.update(migration.file).update(migration.up);
  return join(tmpdir(), `llm-server-pglite-${hash.digest('hex').slice(0, 16)}.tar`);
}

export async function ensureSnapshot(): Promise<string> {
  const path = snapshotPath();
  if (existsSync(path)) return path;
  const dataSource = await new DataSource(dataSourceOptions({ kind: 'pglite', dataDir: null })).initialize();
  try {
    await runMigrations(dataSource);
    const pool = (dataSource.driver as unknown as { master: { dumpDataDir(): Promise<Blob> } }).master;
    const dump = Buffer.from(await (await pool.dumpDataDir()).arrayBuffer());
    const partial = `${path}.${process.pid}`;
    writeFileSync(partial, dump);
    renameSync(partial, path); // atomic: a concurrent run never reads half a file
  } finally {
    await dataSource.destroy();
  }
  return path;
}

let cached: Buffer | null = null;

/** The snapshot as a Blob for DatabaseTarget.initialDump (null when the global setup did not run). */
export function snapshotBlob(): Blob | null {
  const path = snapshotPath();
  if (!cached && existsSync(path)) cached = readFileSync(path);
  return cached ? new Blob([cached]) : null;
}
