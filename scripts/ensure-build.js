#!/usr/bin/env node
// `npm start` runs the compiled server; this builds it first when dist/ is missing or older
// than the sources (the server's src/ and the admin console's console/), so a fresh clone needs
// only `npm ci && npm start`.
// `node scripts/ensure-build.js --stamp` (npm's postbuild) only records that dist/ is fresh:
// The build empties dist/ first (scripts/clean-dist.js), stamp included, so `npm run build` re-stamps.
const { existsSync, readdirSync, statSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { spawnSync } = require('node:child_process');

const root = join(__dirname, '..');
const dist = join(root, 'dist');
const stamp = join(dist, '.build-stamp');

function writeStamp() {
  if (!existsSync(join(dist, 'main.js'))) {
    console.error('dist/main.js is missing: the build did not produce the server.');
    process.exit(1);
  }
  writeFileSync(stamp, new Date().toISOString());
}

function newestMtime(path) {
  const stats = statSync(path);
  if (!stats.isDirectory()) return stats.mtimeMs;
  return readdirSync(path).reduce((newest, entry) => Math.max(newest, newestMtime(join(path, entry))), 0);
}

if (process.argv.includes('--stamp')) {
  writeStamp();
  process.exit(0);
}

const inputs = ['src', 'console', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json'].map((p) =>
  join(root, p),
);
const built = existsSync(stamp) && existsSync(join(dist, 'main.js')) ? statSync(stamp).mtimeMs : 0;
const newest = inputs.filter(existsSync).reduce((max, p) => Math.max(max, newestMtime(p)), 0);

if (built >= newest) process.exit(0);
const tools = ['tsc', 'vite'].map((tool) => join(root, 'node_modules', '.bin', tool));
if (!tools.every(existsSync)) {
  console.error('dist/ is missing or stale and the build tools are not installed: run `npm ci` then `npm run build`.');
  process.exit(1);
}
console.error('Building the server and the admin console (dist/ is missing or older than src/ or console/)...');
// `npm run build` itself, so the build steps are written in one place (package.json); without its
// postbuild hook, since the stamp is written here.
const npmCli = process.env.npm_execpath;
const [command, args] = npmCli && npmCli.endsWith('.js') ? [process.execPath, [npmCli]] : ['npm', []];
const result = spawnSync(command, [...args, 'run', 'build', '--ignore-scripts'], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);
writeStamp();
