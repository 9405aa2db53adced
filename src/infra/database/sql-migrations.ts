/**
 * Hand-written SQL migrations from migrations/*.sql, presented to TypeORM as migration
 * classes so its migrations table keeps the history. A file is `<timestamp>-<name>.sql` with a
 * `-- migrate:up` and a `-- migrate:down` section; the same SQL runs on PostgreSQL and PGlite.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { MigrationInterface, QueryRunner } from 'typeorm';

/** migrations/ at the project root, from src/infra/database (ts) or dist/infra/database (js). */
export const MIGRATIONS_DIR = resolve(__dirname, '..', '..', '..', 'migrations');

const FILE_NAME = /^(\d{13})-([a-z0-9-]+)\.sql$/;

export interface SqlMigrationFile {
  file: string;
  timestamp: string;
  /** TypeORM wants the 13-digit timestamp at the end of the class name. */
  className: string;
  up: string;
  down: string;
}

export function parseMigrationFile(file: string, text: string): SqlMigrationFile {
  const match = FILE_NAME.exec(file);
  if (!match) throw new Error(`${file}: migration files are named <13-digit timestamp>-<name>.sql`);
  const upAt = text.indexOf('-- migrate:up');
  const downAt = text.indexOf('-- migrate:down');
  if (upAt < 0 || downAt < upAt) {
    throw new Error(`${file}: needs a "-- migrate:up" section followed by a "-- migrate:down" section`);
  }
  const words = match[2].split('-').map((word) => word[0].toUpperCase() + word.slice(1));
  return {
    file,
    timestamp: match[1],
    className: `${words.join('')}${match[1]}`,
    up: text.slice(upAt + '-- migrate:up'.length, downAt).trim(),
    down: text.slice(downAt + '-- migrate:down'.length).trim(),
  };
}

export function readMigrationFiles(dir = MIGRATIONS_DIR): SqlMigrationFile[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.sql'))
    .sort()
    .map((file) => parseMigrationFile(file, readFileSync(join(dir, file), 'utf8')));
}

export function toMigrationClass(migration: SqlMigrationFile): new () => MigrationInterface {
  const named = {
    [migration.className]: class implements MigrationInterface {
      readonly name = migration.className;
      async up(queryRunner: QueryRunner): Promise<void> {
        await queryRunner.query(migration.up);
      }
      async down(queryRunner: QueryRunner): Promise<void> {
        await queryRunner.query(migration.down);
      }
    },
  };
  return named[migration.className];
}

export function sqlMigrations(dir = MIGRATIONS_DIR): (new () => MigrationInterface)[] {
  return readMigrationFiles(dir).map(toMigrationClass);
}
