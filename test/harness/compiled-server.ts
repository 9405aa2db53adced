/**
 * The server compiled once per change of its sources, for the tests that run it as a child
 * process (startup failures, the quickstart, shutdown, tracing): `node <build>/src/main.js`
 * starts in a fraction of the time `-r @swc-node/register src/main.ts` takes, which compiles every
 * module on each start. Built by Jest's global setup with the project's own .swcrc into
 * node_modules/.cache (so module resolution finds node_modules), keyed by a hash of the sources;
 * migrations/ and config/ are linked beside it, where the compiled code looks for them.
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');
const CACHE = join(ROOT, 'node_modules', '.cache', 'llm-server-test-build');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') ? [path] : [];
  });
}

function buildDir(): string {
  const hash = createHash('sha256');
  hash.update(readFileSync(join(ROOT, '.swcrc')));
  for (const file of sources(join(ROOT, 'src'))) hash.update(relative(ROOT, file)).update(readFileSync(file));
  return join(CACHE, hash.digest('hex').slice(0, 16));
}

/** The compiled server entry point, building it first when the sources changed. */
export function compiledMain(): string {
  return compiledEntry('main');
}

/** A compiled entry point of src/ (`main`, `migration-run`), building first when the sources changed. */
export function compiledEntry(name: string): string {
  const dir = buildDir();
  const main = join(dir, 'src', `${name}.js`);
  if (existsSync(main)) return main;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const swc = require('@swc/core') as typeof import('@swc/core');
  const options = { ...JSON.parse(readFileSync(join(ROOT, '.swcrc'), 'utf8')), sourceMaps: false, swcrc: false };
  const partial = `${dir}.${process.pid}`;
  for (const file of sources(join(ROOT, 'src'))) {
    const out = join(partial, relative(ROOT, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, swc.transformFileSync(file, { ...options, filename: file }).code);
  }
  for (const linked of ['migrations', 'config']) symlinkSync(join(ROOT, linked), join(partial, linked));
  rmSync(dir, { recursive: true, force: true });
  renameSync(partial, dir); // atomic: concurrent runs never see half a build
  return main;
}
