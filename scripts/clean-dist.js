#!/usr/bin/env node
// Empties dist/ before a build, so files of deleted sources never linger in it (and the build
// stamp of scripts/ensure-build.js goes with them: `npm run build` writes a new one).
require('node:fs').rmSync(require('node:path').join(__dirname, '..', 'dist'), { recursive: true, force: true });
