#!/usr/bin/env node
// Part of `npm run build`: makes dist/pglite-template, the embedded database the server copies
// into a new DATA_DIR instead of running initdb (src/infra/database/pglite-template.ts).
'use strict';
require('reflect-metadata');
const { join } = require('node:path');

const database = join(__dirname, '..', 'dist', 'infra', 'database');
const { TEMPLATE_DIR } = require(join(database, 'pglite-template.js'));
const { buildTemplate } = require(join(database, 'pglite-template-build.js'));

buildTemplate(TEMPLATE_DIR).catch((error) => {
  console.error(`build-pglite-template: ${error.stack ?? error}`);
  process.exit(1);
});
