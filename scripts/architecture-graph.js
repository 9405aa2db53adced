#!/usr/bin/env node
// `npm run arch`: writes the graph of the feature modules (who imports whom, from
// dependency-cruiser) into docs/ARCHITECTURE.md, between the GRAPH_START and GRAPH_END markers,
// as a Mermaid diagram. check-architecture.js fails lint when it is out of date.
const { execFileSync } = require('node:child_process');
const { readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const ROOT = join(__dirname, '..');
const DOC = join(ROOT, 'docs', 'ARCHITECTURE.md');
const GRAPH_START = '<!-- npm run arch: module graph -->';
const GRAPH_END = '<!-- end of module graph -->';

/** The feature modules and their imports, as a Mermaid block. */
function moduleGraph() {
  const mermaid = execFileSync(
    process.execPath,
    [
      join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs'),
      'src',
      '--config',
      '.dependency-cruiser.cjs',
      '--output-type',
      'mermaid',
      '--include-only',
      '^src/modules',
      '--collapse',
      '^src/modules/[^/]+',
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  return `\`\`\`mermaid\n${mermaid.trim()}\n\`\`\``;
}

if (require.main === module) {
  const doc = readFileSync(DOC, 'utf8');
  const start = doc.indexOf(GRAPH_START);
  const end = doc.indexOf(GRAPH_END);
  if (start < 0 || end < 0) throw new Error(`docs/ARCHITECTURE.md needs the markers ${GRAPH_START} and ${GRAPH_END}`);
  writeFileSync(DOC, `${doc.slice(0, start + GRAPH_START.length)}\n${moduleGraph()}\n${doc.slice(end)}`);
  process.stdout.write('docs/ARCHITECTURE.md: module graph written\n');
}

module.exports = { moduleGraph, GRAPH_START, GRAPH_END };
