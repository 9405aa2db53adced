/**
 * The embedded database's template (src/infra/database/pglite-template.ts): a new data directory
 * gets a copy, atomically; an existing one is never touched; a template that cannot be copied
 * falls back to initdb instead of failing the start; a stamped template is readable by the user
 * who runs the server, whoever built it (the image: built by root, run as 1000).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seedFromTemplate, stampTemplate } from '../src/infra/database/pglite-template';

function fakeTemplate(): string {
  const dir = mkdtempSync(join(tmpdir(), 'llm-template-'));
  mkdirSync(join(dir, 'pg_logical'), { mode: 0o700 });
  writeFileSync(join(dir, 'PG_VERSION'), '17\n');
  writeFileSync(join(dir, 'pg_logical', 'replorigin_checkpoint'), 'x', { mode: 0o600 });
  stampTemplate(dir);
  return dir;
}

describe('the PGlite template', () => {
  it('is stamped readable by everyone, directories searchable (PostgreSQL makes some files 0600)', () => {
    const template = fakeTemplate();
    expect(statSync(join(template, 'pg_logical', 'replorigin_checkpoint')).mode & 0o444).toBe(0o444);
    expect(statSync(join(template, 'pg_logical')).mode & 0o555).toBe(0o555);
  });

  it('seeds a data directory that does not exist, without the stamp or a partial copy left behind', () => {
    const template = fakeTemplate();
    const parent = mkdtempSync(join(tmpdir(), 'llm-data-'));
    const dataDir = join(parent, 'pglite');
    expect(seedFromTemplate(dataDir, template)).toBe(true);
    expect(readFileSync(join(dataDir, 'pg_logical', 'replorigin_checkpoint'), 'utf8')).toBe('x');
    expect(readdirSync(dataDir).sort()).toEqual(['PG_VERSION', 'pg_logical']);
    expect(readdirSync(parent)).toEqual(['pglite']);
  });

  it('never touches an existing data directory', () => {
    const template = fakeTemplate();
    const dataDir = mkdtempSync(join(tmpdir(), 'llm-data-'));
    expect(seedFromTemplate(dataDir, template)).toBe(false);
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it('ignores a template without a stamp of this PGlite, or none at all', () => {
    const unstamped = mkdtempSync(join(tmpdir(), 'llm-template-'));
    writeFileSync(join(unstamped, 'PG_VERSION'), '17\n');
    const parent = mkdtempSync(join(tmpdir(), 'llm-data-'));
    expect(seedFromTemplate(join(parent, 'a'), unstamped)).toBe(false);
    expect(seedFromTemplate(join(parent, 'b'), join(parent, 'missing'))).toBe(false);
    expect(readdirSync(parent)).toEqual([]);
  });

  it('falls back (false: PGlite runs initdb) when the copy fails, leaving nothing behind', () => {
    const template = fakeTemplate();
    // A FIFO cannot be copied: the copy fails midway, as an unreadable file would for another user.
    execFileSync('mkfifo', [join(template, 'pg_logical', 'zz-fifo')]);
    const parent = mkdtempSync(join(tmpdir(), 'llm-data-'));
    expect(seedFromTemplate(join(parent, 'pglite'), template)).toBe(false);
    expect(readdirSync(parent)).toEqual([]);
    expect(existsSync(join(parent, 'pglite'))).toBe(false);
  });
});
