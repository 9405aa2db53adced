#!/usr/bin/env node
// The architecture rules dependency-cruiser cannot see (docs/ARCHITECTURE.md), checked by
// `npm run lint` after `depcruise`:
// - only infra/ declares @Global() modules: features list their imports;
// - only http/ (and the entry files) sets response headers or status codes;
// - a file over MAX_LINES says in its top comment why it is one cohesive thing;
// - the module graph in docs/ARCHITECTURE.md is the current one (`npm run arch` writes it).
// Prints every violation with its file and line and exits 1 when there is one.
const { readdirSync, readFileSync } = require('node:fs');
const { join, relative } = require('node:path');
const { moduleGraph, GRAPH_START, GRAPH_END } = require('./architecture-graph');

const ROOT = join(__dirname, '..');
const SRC = join(ROOT, 'src');
const MAX_LINES = 320;
const ENTRY_FILES = new Set([
  'src/main.ts',
  'src/server.ts',
  'src/app.module.ts',
  'src/migration-run.ts',
  'src/workers.ts',
]);

function sources(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const problems = [];
const report = (file, line, message) => problems.push(`${file}:${line}: ${message}`);

for (const path of sources(SRC)) {
  const file = relative(ROOT, path);
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  const http = file.startsWith('src/http/') || ENTRY_FILES.has(file);
  lines.forEach((line, index) => {
    const code = line.replace(/\/\/.*$/, '');
    if (/@Global\(\)/.test(code) && !file.startsWith('src/infra/')) {
      report(file, index + 1, '@Global() outside infra/: a feature module lists its imports instead');
    }
    if (!http && /\.(setHeader|writeHead)\(|\bres\.status\(/.test(code)) {
      report(file, index + 1, 'a response header or status outside http/: return figures, let http/ write them');
    }
  });
  const topComment = /^\/\*\*([\s\S]*?)\*\//.exec(text)?.[1] ?? '';
  if (lines.length > MAX_LINES && !/cohesive/i.test(topComment)) {
    report(file, 1, `${lines.length} lines: split it, or say in its top comment why it is one cohesive thing`);
  }
}

const doc = readFileSync(join(ROOT, 'docs', 'ARCHITECTURE.md'), 'utf8');
const start = doc.indexOf(GRAPH_START);
const end = doc.indexOf(GRAPH_END);
if (start < 0 || end < 0 || doc.slice(start + GRAPH_START.length, end).trim() !== moduleGraph().trim()) {
  report('docs/ARCHITECTURE.md', 1, 'the module graph is not the current one: run `npm run arch`');
}

if (problems.length > 0) {
  process.stderr.write(`${problems.join('\n')}\n\n${problems.length} architecture problem(s)\n`);
  process.exit(1);
}
process.stdout.write('architecture: ok\n');
